#!/usr/bin/env python3
"""A stand-in for the Hugging Face hub, for testing `eddy pull` without a network.

Serves the files of one directory as the model repository ORG/NAME in the hub's URL scheme:
  GET /api/models/ORG/NAME/revision/REV[?blobs=true]  -> {"sha", "siblings": [{rfilename, size,
                                                         blobId, lfs: {sha256, size}}]}
  GET/HEAD /ORG/NAME/resolve/REV/PATH                 -> the file, with X-Repo-Commit, ETag,
                                                         X-Linked-Etag/X-Linked-Size for LFS files
                                                         (which redirect to /cdn/<sha256> as the
                                                         real hub does), and Range support.
Fault injection (--fault):
  drop           the first download of the largest file sends half its bytes and hangs up
  corrupt        every download of the largest file has one byte flipped
  corrupt-once   only the first download of the largest file is corrupted
  unsafe-path    the file list also names "../escape.json", which a client must refuse
  bad-listing    the file list is not JSON
  stall          the first download of the largest file sends half its bytes, then goes silent
Binds 127.0.0.1 on a free port, prints the port on stdout, logs every request (method, path,
Range) to --log, and exits by itself after --lifetime seconds.
"""
import argparse
import hashlib
import http.server
import json
import os
import sys
import threading
import time
import urllib.parse

LFS_SUFFIXES = (".safetensors", ".bin", ".gguf")


def describe(root):
    files = {}
    for dirpath, _, names in os.walk(root):
        for name in sorted(names):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            with open(full, "rb") as f:
                data = f.read()
            files[rel] = {
                "data": data,
                "lfs": rel.endswith(LFS_SUFFIXES),
                "sha256": hashlib.sha256(data).hexdigest(),
                "git_sha1": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(),
            }
    return files


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--fault", default="none",
                    choices=["none", "drop", "corrupt", "corrupt-once", "stall",
                             "unsafe-path", "bad-listing"])
    ap.add_argument("--log", required=True)
    ap.add_argument("--lifetime", type=float, default=120.0)
    args = ap.parse_args()

    files = describe(args.root)
    commit = hashlib.sha1(("".join(sorted(f["git_sha1"] for f in files.values()))).encode()
                          ).hexdigest()
    largest = max(files, key=lambda k: len(files[k]["data"]))
    by_sha256 = {f["sha256"]: f for f in files.values()}
    state = {"downloads_of_largest": 0}
    lock = threading.Lock()
    log = open(args.log, "a", buffering=1)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def send_json(self, status, obj, error_code=None):
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if error_code:
                self.send_header("X-Error-Code", error_code)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self):
            self.handle_any()

        def do_GET(self):
            self.handle_any()

        def handle_any(self):
            url = urllib.parse.urlsplit(self.path)
            path = urllib.parse.unquote(url.path)
            with lock:
                log.write("%s %s range=%s\n" % (self.command, path,
                                                self.headers.get("Range", "-")))
            api = "/api/models/%s/revision/" % args.repo
            resolve = "/%s/resolve/" % args.repo
            if path.startswith("/api/models/"):
                if not path.startswith(api):
                    return self.send_json(404, {"error": "Repository not found"}, "RepoNotFound")
                rev = path[len(api):]
                if rev not in ("main", commit):
                    return self.send_json(404, {"error": "Invalid rev id: " + rev},
                                          "RevisionNotFound")
                siblings = []
                for name, f in sorted(files.items()):
                    s = {"rfilename": name, "size": len(f["data"]), "blobId": f["git_sha1"]}
                    if f["lfs"]:
                        s["blobId"] = hashlib.sha1(b"pointer " + name.encode()).hexdigest()
                        s["lfs"] = {"sha256": f["sha256"], "size": len(f["data"]),
                                    "pointerSize": 134}
                    siblings.append(s)
                if args.fault == "unsafe-path":
                    siblings.append(dict(siblings[0], rfilename="../escape.json"))
                if args.fault == "bad-listing":
                    body = b"<html>maintenance</html>"
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                return self.send_json(200, {"id": args.repo, "sha": commit, "siblings": siblings})
            if path.startswith(resolve):
                rev, _, name = path[len(resolve):].partition("/")
                if rev not in ("main", commit):
                    return self.send_json(404, {"error": "Invalid rev id"}, "RevisionNotFound")
                if name not in files:
                    return self.send_json(404, {"error": "Entry not found"}, "EntryNotFound")
                f = files[name]
                if f["lfs"]:
                    # The real hub answers LFS files with a redirect to its CDN.
                    self.send_response(302)
                    self.send_header("Location", "/cdn/" + f["sha256"])
                    self.send_header("X-Repo-Commit", commit)
                    self.send_header("X-Linked-Etag", '"%s"' % f["sha256"])
                    self.send_header("X-Linked-Size", str(len(f["data"])))
                    self.send_header("ETag", '"%s"' % hashlib.sha1(name.encode()).hexdigest())
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                return self.send_file(name, f, {"X-Repo-Commit": commit,
                                                "ETag": '"%s"' % f["git_sha1"]})
            if path.startswith("/cdn/") and path[5:] in by_sha256:
                f = by_sha256[path[5:]]
                name = next(k for k, v in files.items() if v is f)
                return self.send_file(name, f, {"ETag": '"%s"' % f["sha256"]})
            self.send_json(404, {"error": "not found"})

        def send_file(self, name, f, headers):
            data = f["data"]
            start = 0
            rng = self.headers.get("Range")
            if rng:
                if not rng.startswith("bytes=") or not rng[6:].endswith("-"):
                    return self.send_json(400, {"error": "only bytes=N- ranges are served"})
                start = int(rng[6:-1])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", "bytes */%d" % len(data))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            body = data[start:]
            fault = None
            if name == largest and self.command == "GET":
                with lock:
                    state["downloads_of_largest"] += 1
                    first = state["downloads_of_largest"] == 1
                if args.fault in ("drop", "stall") and first:
                    fault = args.fault
                elif args.fault == "corrupt" or (args.fault == "corrupt-once" and first):
                    fault = "corrupt"
            if fault == "corrupt":
                middle = len(body) // 2
                body = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1:]
            self.send_response(206 if rng else 200)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(body)))
            if rng:
                self.send_header("Content-Range",
                                 "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
            self.end_headers()
            if self.command == "HEAD":
                return
            if fault in ("drop", "stall"):
                self.wfile.write(body[:len(body) // 2])
                self.wfile.flush()
                if fault == "stall":
                    time.sleep(args.lifetime)
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    timer = threading.Timer(args.lifetime, lambda: os._exit(3))
    timer.daemon = True
    timer.start()
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
