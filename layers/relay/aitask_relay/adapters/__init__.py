"""The adapters: the ROS client, AWS clients and queues, the ledger, credentials, observability, destinations.

Each speaks one SDK or service and translates its errors into the core's taxonomy; they import only the core.
"""
