"""The host's HTTP client for the generated Python bindings' tests: urllib behind
`loopwork_ffi.Transport`, with a switch for "no signal". Shared by test_bindings.py and
crash_device.py (found beside them on sys.path)."""

import time
import urllib.error
import urllib.request

import loopwork_ffi as lw


class HttpTransport(lw.Transport):
    """urllib as the host's HTTP client, with a switch for "no signal"."""

    def __init__(self, delay=0.0):
        self.online = True
        self.delay = delay
        self.calls = 0
        self.rewrite = None

    def post(self, url, headers, body):
        if self.rewrite:
            body = self.rewrite(body)
        return self.send(urllib.request.Request(url, data=bytes(body), method="POST"), headers)

    def get(self, url, headers):
        return self.send(urllib.request.Request(url, method="GET"), headers)

    def send(self, request, headers):
        self.calls += 1
        if not self.online:
            raise lw.TransportError.Failed("no signal")
        if self.delay:
            time.sleep(self.delay)
        for h in headers:
            request.add_header(h.name, h.value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return lw.HttpResponse(status=response.status, body=response.read())
        except urllib.error.HTTPError as e:
            return lw.HttpResponse(status=e.code, body=e.read())
        except OSError as e:
            raise lw.TransportError.Failed(str(e))
