"""``aitask-relay``: the command line for people (create a task and watch it arrive, read tasks, run the sweep,
replay sample events, read the failure queue, redrive dead letters, serve the HTTP API, run the ROS emulator).

It drives the same library the functions run (``aitask_relay``: its configuration, use cases and adapters), so a
command behaves as the deployed relay does. It is a development-venv tool, never part of the Lambda layer or the
Function Compute package: its dependencies (typer, rich) stay out of the functions' cold start.
"""
