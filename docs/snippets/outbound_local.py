# Outbound internet on the local provider: a web server on 127.0.0.1 plays the internet;
# commands reach the declared URL through the filtering proxy and nothing else.
import http.server
import socket
import threading

from golem_tasks import Golem


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
with socket.socket() as spare:  # a port nothing declares
    spare.bind(("127.0.0.1", 0))
    other = f"http://127.0.0.1:{spare.getsockname()[1]}"

# urllib honours http_proxy, which names the filtering proxy
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
    return results[0].stdout


with Golem(progress=False, provider_options={"outbound": [allowed]}) as golem:
    print(golem.run(fetch), end="")
server.shutdown()
# hello from the internet
# 403 blocked by the computation payload manifest: 127.0.0.1:40123 is not among its URLs
# (http://127.0.0.1:39877); add a URL of that host and port to outbound= (...)
