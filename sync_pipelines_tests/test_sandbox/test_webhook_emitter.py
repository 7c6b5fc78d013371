"""The sandbox's webhook sender posts several deliveries at once, as a real source's sender does."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sync_pipelines.sandbox.webhooks import WebhookEmitter


def test_two_due_webhooks_are_in_flight_at_the_same_time() -> None:
    # Each request waits at a barrier for the other one: delivered one after another, the first would give up
    # waiting and be answered 500.
    both_in_flight = threading.Barrier(2, timeout=10)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                both_in_flight.wait()
                status = 200
            except threading.BrokenBarrierError:
                status = 500
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    emitter = WebhookEmitter(delivery_threads=4)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        for n in range(2):
            emitter.send("probe", url, b"{}", lambda body: {}, retry_delays=(), event_id=f"e{n}")
        assert emitter.wait_idle(20)
        assert sorted((d.event_id, d.status) for d in emitter.log) == [("e0", 200), ("e1", 200)]
    finally:
        emitter.stop()
        server.shutdown()
        server.server_close()
