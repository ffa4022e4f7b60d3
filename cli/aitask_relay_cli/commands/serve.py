"""``aitask-relay serve``: the HTTP API's routes behind a real local HTTP server, with ``GET /openapi.json``
(the server: local_server.py, loaded when the command runs)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Annotated

import typer

from aitask_relay_cli.app import JsonOutput, Profile, Quiet, Region, UseEmulator, session, usage_error


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def register(app: typer.Typer) -> None:
    @app.command(
        epilog="Example: aitask-relay serve --emulator --port 8080, then "
        "curl -H 'content-type: application/json' -d '{\"Prompt\": \"a VPC\"}' http://127.0.0.1:8080/tasks "
        "and curl http://127.0.0.1:8080/openapi.json"
    )
    def serve(
        port: Annotated[
            int, typer.Option("--port", envvar="RELAY_SERVE_PORT", help="TCP port (0: a free one).", min=0, max=65535)
        ] = 8080,
        host: Annotated[
            str,
            typer.Option("--host", envvar="RELAY_SERVE_HOST", help="Address to bind; loopback by default (no auth)."),
        ] = "127.0.0.1",
        profile: Profile = None,
        region: Region = None,
        json_output: JsonOutput = False,
        quiet: Quiet = False,
        emulator: UseEmulator = False,
    ) -> None:
        """The HTTP API (GET /tasks/{id}, GET /tasks/{id}/report, POST /tasks) and GET /openapi.json on a local
        HTTP server, through the same resolver as the Lambda function. Ctrl-C stops it."""
        environment = {}
        if not os.environ.get("RELAY_DESTINATIONS"):
            environment["RELAY_DESTINATIONS"] = (Path.cwd() / "templates").as_uri() + "/"
        with session(
            profile=profile,
            region=region,
            json_output=json_output,
            quiet=quiet,
            emulator=emulator,
            environment=environment,
        ) as run:
            from aitask_relay import runtime
            from aitask_relay_cli.local_server import make_server

            runtime.config()  # a bad setting fails now, by name (exit 2), not on the first request
            try:
                server = make_server(host, port, quiet=quiet or json_output)
            except OSError as exc:
                raise usage_error("--port", f"cannot listen on {host}:{port}: {exc.strerror}") from None
            url = f"http://{host}:{server.server_port}"
            if json_output:
                run.output.result({"url": url, "openapi": f"{url}/openapi.json"})
            else:
                run.output.say(f"serving the HTTP API on {url} (description: {url}/openapi.json); Ctrl-C stops")
            # SIGTERM (kill, a test's terminate()) stops it as Ctrl-C does, so the --emulator one is stopped too
            signal.signal(signal.SIGTERM, _interrupt)
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                run.output.say("stopped")
            finally:
                server.server_close()


