"""The host's HTTP client for the generated Python bindings' tests: urllib behind
`loopwork_ffi.Transport`, with a switch for "no signal" and one for a link that drops mid-way.
Shared by test_bindings.py and crash_device.py (found beside them on sys.path)."""

import http.client
import time
import urllib.error
import urllib.parse
import urllib.request

import loopwork_ffi as lw


class NoRedirects(urllib.request.HTTPRedirectHandler):
    """The bindings follow no redirect: a 3xx is a response like any other."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


OPENER = urllib.request.build_opener(NoRedirects)


class HttpTransport(lw.Transport):
    """urllib as the host's HTTP client, with a switch for "no signal" (`online`), and
    `cut_next_patch`: the next PATCH announces its whole body, sends only that many bytes of it
    and the link drops (the socket closes mid-body, no answer). `patched` counts the PATCH body
    bytes that left this side."""

    def __init__(self, delay=0.0):
        self.online = True
        self.delay = delay
        self.calls = 0
        self.rewrite = None
        self.cut_next_patch = None
        self.patched = 0

    def send(self, request):
        self.calls += 1
        if not self.online:
            raise lw.TransportError.Failed("no signal")
        if self.delay:
            time.sleep(self.delay)
        body = bytes(request.body)
        if self.rewrite and request.method == "POST":
            body = self.rewrite(body)
        if request.method == "PATCH":
            cut, self.cut_next_patch = self.cut_next_patch, None
            if cut is not None:
                self.patched += cut
                drop_mid_body(request, body, cut)
                raise lw.TransportError.Failed("the link dropped")
            self.patched += len(body)
        r = urllib.request.Request(request.url, data=body if body or request.method in ("POST", "PATCH") else None, method=request.method)
        for h in request.headers:
            r.add_header(h.name, h.value)
        try:
            with OPENER.open(r, timeout=30) as response:
                answer = lw.HttpResponse(status=response.status, headers=headers(response.getheaders()), body=response.read())
        except urllib.error.HTTPError as e:
            answer = lw.HttpResponse(status=e.code, headers=headers(e.headers.items()), body=e.read())
        except OSError as e:
            raise lw.TransportError.Failed(str(e))
        return answer


def drop_mid_body(request, body, cut):
    """Sends the request's headers (the whole body's Content-Length) and `cut` bytes of the
    body, then closes the connection."""
    assert 0 < cut < len(body), "a drop in the middle of the body"
    url = urllib.parse.urlsplit(request.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    connection.putrequest(request.method, url.path, skip_accept_encoding=True)
    for h in request.headers:
        connection.putheader(h.name, h.value)
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders()
    connection.send(body[:cut])
    time.sleep(0.2)  # the bytes reach the server before the connection ends
    connection.close()


def headers(pairs):
    return [lw.HttpHeader(name=name, value=value) for name, value in pairs]
