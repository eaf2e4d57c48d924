# Outbound internet on a whole local Golem network: provider-0 whitelists 127.0.0.1 like
# `ya-provider whitelist add -p 127.0.0.1`, provider-1 whitelists nothing (ya-provider's
# default) and rejects the demand's manifest. A web server on 127.0.0.1 plays the internet.
import http.server
import os
import socket
import threading

from golem_tasks import Golem
from golem_tasks.localnet import LocalNet, Negotiator


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello from the internet")

    def log_message(self, *args):  # keep the output to the job's
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
threading.Thread(target=server.serve_forever, daemon=True).start()
allowed = f"http://127.0.0.1:{server.server_address[1]}"
with socket.socket() as spare:  # a port the manifest does not name
    spare.bind(("127.0.0.1", 0))
    other = f"http://127.0.0.1:{spare.getsockname()[1]}"

FETCH = """
import sys, urllib.request, urllib.error
for url in sys.argv[1:]:
    try:
        print(urllib.request.urlopen(url, timeout=30).read().decode())
    except urllib.error.HTTPError as exc:
        print(exc.code, exc.read().decode().strip())
"""


def fetch(ctx):
    results = yield ctx.run("python3", "-c", FETCH, allowed, other)
    return ctx.provider_name, results[0].stdout


negotiators = [Negotiator(outbound_whitelist=["127.0.0.1"]), Negotiator()]
with LocalNet(providers=2, negotiators=negotiators) as net:
    os.environ.update(net.env)  # YAGNA_API_URL, YAGNA_APPKEY, GOLEM_TASKS_REGISTRY_URL
    with Golem(provider="golem", image="golem/alpine:latest", progress=False,
               provider_options={"outbound": [allowed], "provider_record": False}) as golem:
        name, answers = golem.run(fetch)
    print(f"ran on {name}")
    print(answers, end="")
server.shutdown()
# ran on provider-0
# hello from the internet
# 403 blocked by the computation payload manifest: 127.0.0.1:40123 is not among its URLs
# (http://127.0.0.1:39877); add a URL of that host and port to outbound= (...)
