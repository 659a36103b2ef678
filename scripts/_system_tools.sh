# Debian packages that scripts/build-pdf and scripts/test need beside the Python environment:
# sourced, not executed. Installed with apt-get only when missing (root, package registries).
#   chromium       prints the PDF of record; Playwright drives it for tests/site (its own
#                  browser download does not work offline)
#   poppler-utils  pdfinfo (the contents' page numbers of the PDF of record), pdftoppm and
#                  pdftotext (its check, tests/site/pdfcheck.py)
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
for tool in pdfinfo pdftoppm pdftotext; do
    if ! command -v "$tool" >/dev/null; then
        missing+=(poppler-utils)
        break
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    if ! command -v apt-get >/dev/null; then
        echo "missing system packages: ${missing[*]} (no apt-get to install them)" >&2
        return 2
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "${missing[@]}"
fi
unset missing tool
