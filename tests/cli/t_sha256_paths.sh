#!/bin/sh
# SHA-256 is nettle's, which picks the x86 SHA extensions or portable C at
# run time. The unit test runs whichever the CPU picks; run it again with
# nettle's portable path forced (NETTLE_FAT_OVERRIDE names the CPU features
# it may use: none), so both are checked against the NIST vectors here.
set -eu
NETTLE_FAT_OVERRIDE=none "$BUILD/tests/test_reader_sha256" >/dev/null
"$BUILD/tests/test_reader_sha256" >/dev/null
echo ok
