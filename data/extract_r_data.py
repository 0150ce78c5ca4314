"""Rebuild the CSV files in data/mlmrev and data/radon from Debian's R packages.

R packages keep their data sets in a lazy-load database (data/Rdata.rdx, an index, and
data/Rdata.rdb, the compressed objects). This reads that database without R, through the
`rdata` package from PyPI (which parses R's serialization format), and writes each data
frame as CSV with its factor levels as text.

    d=$(mktemp -d) && cd "$d"
    apt-get download r-cran-mlmrev r-cran-rstanarm
    for f in *.deb; do dpkg-deb -x "$f" root; done
    python3 -m venv venv && venv/bin/pip install rdata pandas
    venv/bin/python /path/to/data/extract_r_data.py root /path/to/data
"""
import bz2
import gzip
import lzma
import os
import struct
import sys
import zlib

import rdata


def _parse(raw):
    return rdata.conversion.convert(rdata.parser.parse_data(raw, expand_altrep=True))


def _object(rdb, offset, length):
    # Each entry: a 4-byte big-endian uncompressed length, then either zlib data or a
    # one-byte method tag ('Z' xz, '2' bzip2, '0' stored) and the payload.
    blob = rdb[offset : offset + length]
    tag = blob[4:5]
    if tag == b"Z":
        raw = lzma.decompress(blob[5:])
    elif tag == b"2":
        raw = bz2.decompress(blob[5:])
    elif tag == b"0":
        raw = blob[5:]
    else:
        raw = zlib.decompress(blob[4:])
    return _parse(raw)


def load(base, names):
    index = _parse(gzip.decompress(open(base + ".rdx", "rb").read()))
    rdb = open(base + ".rdb", "rb").read()
    frames = {}
    for name in names:
        offset, length = (int(v) for v in index["variables"][name])
        frames[name] = _object(rdb, offset, length)
    return frames


def main(root, out):
    lib = os.path.join(root, "usr/lib/R/site-library")
    mlmrev = load(os.path.join(lib, "mlmRev/data/Rdata"), ["Exam", "Contraception"])
    mlmrev["Exam"].to_csv(os.path.join(out, "mlmrev/exam.csv"), index=False)
    mlmrev["Contraception"].to_csv(os.path.join(out, "mlmrev/contraception.csv"), index=False)
    rstanarm = load(os.path.join(lib, "rstanarm/data/Rdata"), ["radon"])
    rstanarm["radon"].to_csv(os.path.join(out, "radon/radon.csv"), index=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
