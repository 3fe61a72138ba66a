#!/bin/sh
# `make run`: starts the maild family in the foreground with the
# development configuration, keeping all state under ./run/.
#
# As root the roles chroot and drop to the system users created here; as
# anyone else maild runs unprivileged (-u). Ctrl-C stops the family.
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
build=$top/${1:-build}
run=$top/run

mkdir -p "$run/db" "$run/spool" "$run/vmail" "$run/empty" "$run/tls"
# Chroot directories must not be writable by anyone but root.
chmod 0755 "$run" "$run/empty"

if [ ! -f "$run/tls/key.pem" ]; then
	echo "make run: creating a self-signed certificate for localhost in $run/tls"
	(umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$run/tls/key.pem" -out "$run/tls/cert.pem" -days 3650 \
		-subj /CN=localhost -addext subjectAltName=DNS:localhost 2>/dev/null)
fi

sed "s|@RUN@|$run|g" "$top/etc/dev/maild-dev.conf.in" >"$run/maild.conf"

if [ "$(id -u)" = 0 ]; then
	flags=""
	for user in _maild _maildl _maildq _maildv; do
		if ! getent passwd "$user" >/dev/null; then
			echo "make run: creating system user $user"
			useradd --system --user-group --no-create-home --home-dir /nonexistent \
				--shell /usr/sbin/nologin "$user"
		fi
	done
	chown root:root "$run/empty"
	# Each role's own directory is for that role only, as maild makes them.
	chmod 0700 "$run/db" "$run/spool" "$run/vmail"
	chown _maildl: "$run/db"
	chown _maildq: "$run/spool"
	chown _maildv: "$run/vmail"
else
	flags="-u"
	echo "make run: not root, starting an unprivileged family (no chroot, no change of user)"
fi

"$build/sbin/maild" -n $flags -f "$run/maild.conf"
echo "make run: $build/sbin/mailctl -s $run/control.sock status shows the processes; Ctrl-C stops"
exec "$build/sbin/maild" -d $flags -f "$run/maild.conf"
