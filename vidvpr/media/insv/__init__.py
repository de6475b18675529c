"""Native Insta360 files (.insv video, .insp photo): the metadata trailer they end with, decoded
into typed records (layout: `trailer`; INFO: `info`; lens calibration: `calibration`; time
series: `telemetry`; the file shell: `reader`)."""

from vidvpr.media.insv.reader import InsvTrailer, calibration_of, has_trailer, read_calibration_file, read_trailer

__all__ = ["InsvTrailer", "calibration_of", "has_trailer", "read_calibration_file", "read_trailer"]
