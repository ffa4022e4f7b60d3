"""aitask-relay: Alibaba Cloud ROS AI tasks turned into delivered infrastructure templates."""

__version__ = "0.1.0"
