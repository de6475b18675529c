"""The settings record x264 and x265 write into their streams ("x264 - core 164 ... qp=30 ...").

It is read from the stream itself, the codec's extradata (where an MP4 keeps x265's headers) and
the first packets (x264 puts it in an SEI message of the first frame), never by scanning a file's
bytes, so it is found wherever the muxer put the index.
"""

from __future__ import annotations

import re
from pathlib import Path

import av

ENCODER_SETTINGS_PATTERN = re.compile(rb"x26[45] (?:- core|\(build)[^\x00]{0,8000}?(?=\x00|$)")
PACKETS_SEARCHED = 4


def encoder_settings_string(path: Path) -> str | None:
    """The x264/x265 settings string of a file's first video stream, or None when absent."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            chunks = [bytes(stream.codec_context.extradata or b"")]
            for count, packet in enumerate(container.demux(stream)):
                if count >= PACKETS_SEARCHED:
                    break
                chunks.append(bytes(packet))
    except (OSError, av.error.FFmpegError):
        return None
    for chunk in chunks:
        match = ENCODER_SETTINGS_PATTERN.search(_unescape(chunk))
        if match:
            return match.group(0).decode("ascii", "replace")
    return None


def _unescape(nal_bytes: bytes) -> bytes:
    """Drop H.264/H.265 emulation-prevention bytes (00 00 03 → 00 00) so the text reads whole."""
    return nal_bytes.replace(b"\x00\x00\x03", b"\x00\x00")
