#!/bin/sh
# proxy_env.sh [STATUS] - the PROGRAM handler of proxy.py.
#
# Reports what acceptd gave it - one NAME=VALUE line per connection
# variable that is set (unset ones are left out), PID= and PPID= (the
# acceptd that spawned it), and END - then copies the rest of the
# connection back byte for byte (cat) and exits STATUS (default 0).  So
# a client reads "...END\n" followed by exactly the bytes it sent after
# its PROXY header.
for v in PROTO TCPLOCALIP TCPLOCALPORT TCPREMOTEIP TCPREMOTEPORT \
	REMOTE_ADDR REMOTE_PORT TCPCONNNUM ACCEPTD_LISTENER \
	UNIXREMOTEEUID UNIXREMOTEEGID UNIXREMOTEPID UNIXLOCALPATH; do
	eval "isset=\${$v+y}"
	if [ "$isset" = y ]; then
		eval "printf '%s=%s\n' $v \"\$$v\""
	fi
done
printf 'PID=%s\nPPID=%s\nEND\n' "$$" "$PPID"
cat || exit 99
exit "${1:-0}"
