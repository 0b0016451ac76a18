#!/bin/sh
# no-check.sh - stands in for the unit tests when configure found no check:
# a hard error in `make check` (TAP "Bail out!"), never a silent omission.
echo "Bail out! check >= 0.9.10 was not found when configure ran, so the unit tests were not built; install it (Debian: apt-get install check) and re-run configure"
exit 99
