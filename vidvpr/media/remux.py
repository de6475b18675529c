"""Copying a video stream into MP4 unchanged (no decoding, no encoding), its clock started at 0."""

from __future__ import annotations

from pathlib import Path

import av

from vidvpr.core.atomic import output_error
from vidvpr.core.errors import BadInput
from vidvpr.media.probe import av_problem


def copy_video_stream(source: Path, target: Path, start_pts: int) -> int:
    """Write the first video stream of `source` into the MP4 `target` packet for packet, every
    timestamp moved back by `start_pts` (the first frame's presentation time) so the copy starts at
    0 as vidvpr's view videos do; audio, subtitles and metadata are left out. Returns the packets
    written. BadInput when a packet has no timestamp (the stream cannot be copied frame-exactly)."""
    written = 0
    try:
        with av.open(str(source)) as reader, av.open(str(target), mode="w", format="mp4") as writer:
            stream = reader.streams.video[0]
            copy = writer.add_stream_from_template(stream)
            for packet in reader.demux(stream):
                if packet.size == 0:  # the demuxer's end-of-stream marker
                    continue
                if packet.pts is None:
                    raise BadInput(f"{source}: packet {written} has no presentation time; cannot copy the stream")
                packet.dts = (packet.dts if packet.dts is not None else packet.pts) - start_pts
                packet.pts -= start_pts
                packet.stream = copy
                writer.mux(packet)
                written += 1
    except av.error.FFmpegError as exc:
        written_error = output_error(target, exc)  # disk full, no permission: the output's problem
        if written_error is not None:
            raise written_error from exc
        raise BadInput(f"{source}: cannot copy its video stream ({av_problem(exc)})") from exc
    return written
