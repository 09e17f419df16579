"""The prediction server of a Loupe DockerFile export (Custom Vision's container routes).

Stands alone in its container: the Python standard library, numpy, Pillow and onnxruntime, no
torch and no Loupe. It serves the package's model.onnx (the same graph as Loupe's ONNX export:
fixed square input, pixel order and range in its metadata_props, every other normalisation inside
the graph) with the routes of Custom Vision's exported containers:

  GET  /                                         a plain text banner
  POST /image                                    imageData: multipart file, form field or raw body
  POST /url                                      {"url": "https://..."}
  POST /<project>/(classify|detect)/iterations/<name>/(image|url)[/nostore]   aliases
  POST /computervision/imageanalysis:analyze?model-name=<name>   Loupe's Image Analysis 4.0 answer

Settings (environment): PORT (80), HOST (0.0.0.0), MAX_IMAGE_BYTES (6 MiB, Loupe's prediction
limit; Custom Vision's containers took 4 MB), ALLOW_PRIVATE_IMAGE_URLS=1 to let /url fetch
private and loopback addresses (refused by default: the container must not become an SSRF proxy).
"""
from __future__ import annotations

import http.client
import io
import ipaddress
import json
import math
import os
import re
import socket
import ssl
import sys
import time
import traceback
import urllib.parse
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
MAX_IMAGE_BYTES = int(os.environ.get("MAX_IMAGE_BYTES", str(6 * 1024 * 1024)))
MAX_JSON_BYTES = 16 * 1024
MAX_SIDE = 16000  # Loupe's prediction limit on either side
# decompression bombs: pixels actually decoded (a JPEG after its DCT draft scaling) are capped
MAX_DECODED_PIXELS = 64 * 1024 * 1024
Image.MAX_IMAGE_PIXELS = MAX_SIDE * MAX_SIDE  # Pillow's own header check, left to the caps here
URL_TIMEOUT_S = 10.0
MAX_REDIRECTS = 3
ALLOW_PRIVATE_URLS = os.environ.get("ALLOW_PRIVATE_IMAGE_URLS", "").lower() in ("1", "true", "yes")
_ORIENTATION = 0x0112
_ROUTE = re.compile(r"(?:/customvision/v3\.\d+/prediction)?(?:/[^/]+(?:/(?:classify|detect)/iterations/[^/]+)?)?"
                    r"/(image|url)(?:/nostore)?/?", re.IGNORECASE)
_ANALYZE = "/computervision/imageanalysis:analyze"


class BadRequest(Exception):
    """A 400: ``cv_code`` for the Custom Vision routes, ``ia_code`` (innererror) for analyze."""

    def __init__(self, cv_code: str, ia_code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.cv_code, self.ia_code, self.message, self.status = cv_code, ia_code, message, status


def _image_error(message: str) -> BadRequest:
    return BadRequest("BadRequestImageFormat", "InvalidImageFormat", message)


class Model:
    """model.onnx, labels.txt and cvexport.manifest beside this file."""

    def __init__(self, folder: Path) -> None:
        manifest = json.loads((folder / "cvexport.manifest").read_text(encoding="utf-8"))
        self.name: str = manifest["Name"]
        self.version: str = manifest.get("LoupeModelVersion") or manifest["ModelFileSHA1"][:16]
        self.is_detector = manifest["DomainType"] == "ObjectDetection"
        self.labels = (folder / manifest["LabelFileName"]).read_text(encoding="utf-8").splitlines()
        self.session = onnxruntime.InferenceSession(str(folder / manifest["ModelFileName"]),
                                                    providers=["CPUExecutionProvider"])
        (inp,) = self.session.get_inputs()
        self.input_name, self.side = inp.name, int(inp.shape[2])
        self.dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
        meta = self.session.get_modelmeta().custom_metadata_map
        self.bgr = meta.get("Image.BitmapPixelFormat") == "Bgr8"
        self.range_255 = meta.get("Image.NominalPixelRange") == "NominalRange_0_255"
        # a Custom Vision iteration's model is customvision-<iteration id> (Loupe's naming)
        self.iteration = self.name.removeprefix("customvision-") if self.name.startswith("customvision-") else ""

    def decode(self, data: bytes) -> tuple[Image.Image, int, int]:
        """RGB image with EXIF orientation applied, and the original (width, height) after it."""
        if not data:
            raise BadRequest("BadRequestImageStream", "InvalidImageFormat", "No image: send the image bytes.")
        try:
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if max(width, height) > MAX_SIDE:
                raise BadRequest("BadRequestImageDimensions", "InvalidImageDimension",
                                 f"The image is {width}x{height} px; each side must be at most {MAX_SIDE}.")
            if image.format in ("JPEG", "MPO"):  # decode at the smallest DCT scale still covering the input
                image.draft("RGB", (self.side, self.side))
            if image.width * image.height > MAX_DECODED_PIXELS:
                raise BadRequest("BadRequestImageDimensions", "InvalidImageDimension",
                                 f"The image has too many pixels ({width}x{height}).")
            image.load()
            if image.getexif().get(_ORIENTATION, 1) in (5, 6, 7, 8):
                width, height = height, width
            image = _to_rgb(ImageOps.exif_transpose(image))
        except BadRequest:
            raise
        except Image.DecompressionBombError as exc:
            raise BadRequest("BadRequestImageDimensions", "InvalidImageDimension", f"{exc}.") from None
        except Exception as exc:  # noqa: BLE001 - Pillow raises OSError, ValueError, SyntaxError, bomb errors...
            raise _image_error(f"The image cannot be decoded: {exc}.") from None
        return image, width, height

    def run(self, image: Image.Image) -> dict[str, np.ndarray]:
        # the package contract: plain resize to the fixed input (bilinear, as Loupe's own
        # preprocessing), NCHW, channel order and range as the metadata says
        pixels = np.asarray(image.resize((self.side, self.side), Image.BILINEAR), np.float32)
        x = pixels.transpose(2, 0, 1)[np.newaxis]
        if self.bgr:
            x = x[:, ::-1]
        if not self.range_255:
            x = x / 255
        outputs = self.session.run(None, {self.input_name: np.ascontiguousarray(x, self.dtype)})
        return {o.name: value for o, value in zip(self.session.get_outputs(), outputs)}

    def found(self, image: Image.Image) -> list[tuple[str, float, tuple[float, float, float, float] | None]]:
        """(tag name, score, relative x1, y1, x2, y2 or None), by score (ties keep label order)."""
        out = self.run(image)
        if not self.is_detector:
            scores = np.asarray(out["model_output"], np.float64).reshape(-1)
            found = [(name, float(s), None) for name, s in zip(self.labels, scores)]
        else:
            boxes = np.asarray(out["detected_boxes"], np.float64).reshape(-1, 4).clip(0, 1)
            classes = np.asarray(out["detected_classes"]).reshape(-1)
            scores = np.asarray(out["detected_scores"], np.float64).reshape(-1)
            found = [(self.labels[int(c)], float(s), (x1, y1, x2, y2))
                     for (x1, y1, x2, y2), c, s in zip(boxes.tolist(), classes, scores)
                     if 0 <= int(c) < len(self.labels) and x2 > x1 and y2 > y1]
        return sorted(found, key=lambda f: -f[1])

    def image_prediction(self, data: bytes) -> dict[str, Any]:
        """Custom Vision's ImagePrediction; boxes normalised left/top/width/height."""
        image, _, _ = self.decode(data)
        predictions = []
        for name, score, box in self.found(image):
            rel = None if box is None else {"left": round(box[0], 6), "top": round(box[1], 6),
                                            "width": round(box[2] - box[0], 6), "height": round(box[3] - box[1], 6)}
            predictions.append({"probability": _confidence(score), "tagId": "", "tagName": name,
                                "boundingBox": rel, "tagType": "Regular"})
        now = datetime.now(UTC)
        return {"id": str(uuid.uuid4()), "project": "", "iteration": self.iteration,
                "created": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
                "predictions": predictions}

    def analyze(self, data: bytes) -> dict[str, Any]:
        """Loupe's analyze answer: customModelResult with tagsResult or objectsResult (pixels)."""
        image, width, height = self.decode(data)
        found = self.found(image)
        if not self.is_detector:
            result = {"tagsResult": {"values": [{"name": n, "confidence": _confidence(s)} for n, s, _ in found]}}
        else:
            result = {"objectsResult": {"values": [
                {"boundingBox": _pixel_box(box, width, height), "tags": [{"name": n, "confidence": _confidence(s)}]}
                for n, s, box in found if box is not None]}}
        return {"modelVersion": self.version, "metadata": {"width": width, "height": height},
                "customModelResult": result}


def _to_rgb(image: Image.Image) -> Image.Image:
    """Transparent pixels over white, as Loupe's decode does (a plain convert would make them black)."""
    if image.mode in ("LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
    if image.mode != "RGBA":
        return image.convert("RGB")
    background = Image.new("RGB", image.size, (255, 255, 255))
    background.paste(image, mask=image)
    return background


def _confidence(value: float) -> float:
    """In 0-1, as the shortest decimal of the network's float32 (0.9, not 0.8999999761581421)."""
    return float(str(np.float32(min(1.0, max(0.0, value)))))


def _pixel_box(box: tuple[float, float, float, float], width: int, height: int) -> dict[str, int]:
    """Relative x1, y1, x2, y2 -> int {x, y, w, h} inside the image, rounded as Loupe's API."""
    x1, y1, x2, y2 = box[0] * width, box[1] * height, box[2] * width, box[3] * height
    x, y = min(math.floor(x1 + 0.5), width - 1), min(math.floor(y1 + 0.5), height - 1)
    right, bottom = min(math.floor(x2 + 0.5), width), min(math.floor(y2 + 0.5), height)
    return {"x": x, "y": y, "w": max(1, right - x), "h": max(1, bottom - y)}


# --- the request body


def multipart_image(content_type: str, body: bytes) -> bytes:
    """The ``imageData`` part (file or plain field: the bytes either way), else the first part with data."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise BadRequest("BadRequestImageStream", "BadArgument", "multipart/form-data needs a boundary.")
    chunks = body.split(b"--" + match.group(1).encode("latin-1"))[1:]
    parts = []
    for chunk in chunks:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        name = re.search(rb'(?i)content-disposition:[^\r\n]*?\bname="?([^";\r\n]*)', head)
        parts.append((name.group(1).decode("latin-1") if name else "", data.removesuffix(b"\r\n")))
    for name, data in sorted(parts, key=lambda p: p[0].lower() != "imagedata"):
        if data:
            return data
    raise BadRequest("BadRequestImageStream", "InvalidImageFormat", "The multipart body holds no image (imageData).")


def _allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ALLOW_PRIVATE_URLS or (ip.is_global and not ip.is_multicast)


def _url_error(message: str) -> BadRequest:
    return BadRequest("BadRequestImageUrl", "InvalidImageUrl", message)


def fetch(url: str) -> bytes:
    """GET an http(s) URL under MAX_IMAGE_BYTES and one deadline. Every hop's host is resolved
    once, every address checked, and the connection made to that checked address (a second DNS
    answer cannot redirect it); redirects are followed by hand, through the same checks."""
    deadline = time.monotonic() + URL_TIMEOUT_S
    for _ in range(MAX_REDIRECTS + 1):
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        except ValueError:
            raise _url_error("The image URL is not a valid URL.") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise _url_error("The image URL must be an http or https URL.")
        try:
            infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise _url_error(f"The host {parts.hostname!r} cannot be resolved.") from None
        addresses = [info[4][0] for info in infos]
        if not addresses or not all(_allowed(a) for a in addresses):
            raise _url_error("The image URL points to a private or loopback address, which is not allowed.")
        status, location, body = _get(parts, port, addresses[0], deadline)
        if location is None:
            if status != 200:
                raise _url_error(f"The image URL answered HTTP {status}.")
            return body
        url = urllib.parse.urljoin(url, location)
    raise _url_error(f"The image URL redirects more than {MAX_REDIRECTS} times.")


def _get(parts: urllib.parse.SplitResult, port: int, address: str,
         deadline: float) -> tuple[int, str | None, bytes]:
    """(status, redirect location or None, body) of one GET dialled to ``address``."""
    https = parts.scheme.lower() == "https"
    conn = (http.client.HTTPSConnection(parts.hostname, port, timeout=URL_TIMEOUT_S,
                                        context=ssl.create_default_context()) if https
            else http.client.HTTPConnection(parts.hostname, port, timeout=URL_TIMEOUT_S))
    # dial the checked address; TLS still verifies (and SNI names) the host name
    conn._create_connection = lambda _, timeout=None, source=None: socket.create_connection(  # type: ignore[attr-defined]
        (address, port), timeout, source)
    try:
        conn.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                     headers={"User-Agent": "Loupe-Export/1", "Accept": "image/*"})
        response = conn.getresponse()
        if response.status in (301, 302, 303, 307, 308) and response.getheader("Location"):
            return response.status, response.getheader("Location"), b""
        declared = response.getheader("Content-Length", "")
        if declared.isdigit() and int(declared) > MAX_IMAGE_BYTES:
            raise BadRequest("BadRequestImageSizeBytes", "InvalidImageSize",
                             f"The image is larger than {MAX_IMAGE_BYTES} bytes.")
        body = bytearray()
        while chunk := response.read(64 * 1024):
            body += chunk
            if len(body) > MAX_IMAGE_BYTES:
                raise BadRequest("BadRequestImageSizeBytes", "InvalidImageSize",
                                 f"The image is larger than {MAX_IMAGE_BYTES} bytes.")
            if time.monotonic() > deadline:
                raise _url_error(f"The image download took longer than {URL_TIMEOUT_S:.0f} s.")
        return response.status, None, bytes(body)
    except (OSError, http.client.HTTPException) as exc:
        raise _url_error(f"The image cannot be downloaded: {exc}.") from None
    finally:
        conn.close()


def _json_url(body: bytes) -> str:
    try:
        value = json.loads(body)
        url = next((v for k, v in value.items() if k.lower() == "url"), None)
    except (ValueError, AttributeError, RecursionError):
        url = None
    if not isinstance(url, str) or not url.strip():
        raise BadRequest("BadRequestImageUrl", "BadArgument", 'The body must be {"url": "<image URL>"}.')
    return url.strip()


# --- the HTTP layer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LoupeExport/1"
    timeout = 60  # seconds per socket read: a client trickling its body cannot hold a thread for ever
    model: Model  # set by main()

    def do_GET(self) -> None:
        if urllib.parse.urlsplit(self.path).path in ("/", ""):
            text = f"Loupe export of '{self.model.name}': POST an image to /image, or {{\"url\"}} to /url.\n"
            return self._send(200, text.encode("utf-8"), "text/plain; charset=utf-8")
        self._json(404, {"code": "NotFound", "message": "Not found."})

    def do_POST(self) -> None:
        split = urllib.parse.urlsplit(self.path)
        path = re.sub(r"/{2,}", "/", split.path)
        route = _ROUTE.fullmatch(path)
        analyze = path.lower() == _ANALYZE
        try:
            # the body first, whatever the answer: closing on unread bytes resets the connection,
            # and the client may lose the answer
            body = self._body(MAX_IMAGE_BYTES + 64 * 1024)  # the image plus multipart framing
            if not route and not analyze:
                raise BadRequest("NotFound", "NotFound", f"No route POST {path}.", status=404)
            if analyze:
                self._check_model_name(urllib.parse.parse_qs(split.query).get("model-name", [""])[0])
            data = self._image(body, want_url=bool(route) and route.group(1).lower() == "url")
            answer = self.model.analyze(data) if analyze else self.model.image_prediction(data)
        except BadRequest as exc:
            if analyze:
                error = {"code": "NotFound" if exc.status == 404 else "InvalidRequest", "message": exc.message,
                         "innererror": {"code": exc.ia_code, "message": exc.message}}
                return self._json(exc.status, {"error": error})
            return self._json(exc.status, {"code": exc.cv_code, "message": exc.message})
        except (TimeoutError, ConnectionError):  # the client went quiet or away mid-body: nobody to answer
            self.close_connection = True
            return None
        except Exception:  # noqa: BLE001 - a JSON 500, never a traceback to the caller
            traceback.print_exc()
            error = {"code": "InternalServerError", "message": "The model failed on this image."}
            return self._json(500, {"error": error} if analyze else error)
        self._json(200, answer)

    def _check_model_name(self, name: str) -> None:
        if not name:
            raise BadRequest("", "BadArgument", "The query parameter 'model-name' is required.")
        if name != self.model.name:
            raise BadRequest("", "NotFound", f"Resource not found. This container serves the model "
                             f"'{self.model.name}', not '{name[:64]}'.", status=404)

    def _image(self, body: bytes, want_url: bool) -> bytes:
        """The image bytes of the request: JSON {"url"} (fetched), multipart, or the raw body."""
        media = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if want_url or media == "application/json":
            if len(body) > MAX_JSON_BYTES:
                raise BadRequest("BadRequestImageUrl", "BadArgument", f"The JSON body is larger than "
                                 f"{MAX_JSON_BYTES} bytes; it holds only {{\"url\": \"<image URL>\"}}.")
            return fetch(_json_url(body))
        data = multipart_image(self.headers["Content-Type"], body) if media == "multipart/form-data" else body
        if len(data) > MAX_IMAGE_BYTES:
            raise BadRequest("BadRequestImageSizeBytes", "InvalidImageSize",
                             f"The image is larger than {MAX_IMAGE_BYTES} bytes.")
        return data

    def _body(self, limit: int) -> bytes:
        too_large = BadRequest("BadRequestImageSizeBytes", "InvalidImageSize", f"The body is larger than {limit} bytes.")
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._chunked(limit, too_large)
        declared = self.headers.get("Content-Length", "0").strip()
        if not declared.isdigit():
            self.close_connection = True
            raise BadRequest("BadRequestImageStream", "BadArgument", "Content-Length is not a number.")
        if int(declared) > limit:
            self.close_connection = True  # not read: the connection cannot be reused
            raise too_large
        return self.rfile.read(int(declared))

    def _chunked(self, limit: int, too_large: BadRequest) -> bytes:
        body = bytearray()
        while True:
            try:
                size = int(self.rfile.readline(1024).split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise BadRequest("BadRequestImageStream", "BadArgument", "The chunked body is malformed.") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(body)
            if len(body) + size > limit:
                self.close_connection = True
                raise too_large
            body += self.rfile.read(size)
            self.rfile.readline(1024)

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._send(status, json.dumps(body).encode("utf-8"), "application/json; charset=utf-8")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    Handler.model = Model(HERE)
    server = ThreadingHTTPServer((os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "80"))), Handler)
    server.daemon_threads = True
    host, port = server.server_address[:2]
    print(f"Serving '{Handler.model.name}' on http://{host}:{port}", flush=True)  # PORT=0: the port chosen
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
