#!/bin/sh
# src_env.sh [read] - a PROGRAM handler that reports what acceptd gave it.
#
# With "read", it first reads one line from the connection and reports it
# as LINE=..., so a test can hold the connection open as long as it likes.
# Then one NAME=VALUE line per variable that is set (unset ones are left
# out), PID= and PPID= (the acceptd that spawned it), and END.
if [ "$1" = read ]; then
	IFS= read -r line
	printf 'LINE=%s\n' "$line"
fi
for v in ACCEPTD_LISTENER LISTEN_PID LISTEN_FDS LISTEN_FDNAMES NOTIFY_SOCKET \
	PROTO TCPLOCALIP TCPLOCALPORT TCPREMOTEIP TCPREMOTEPORT \
	REMOTE_ADDR REMOTE_PORT TCPCONNNUM UNIXREMOTEEUID UNIXREMOTEEGID UNIXREMOTEPID UNIXLOCALPATH; do
	eval "isset=\${$v+y}"
	if [ "$isset" = y ]; then
		eval "printf '%s=%s\n' $v \"\$$v\""
	fi
done
printf 'PID=%s\nPPID=%s\nEND\n' "$$" "$PPID"
