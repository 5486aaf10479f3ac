#!/bin/sh
#
# From the official Redis image: https://github.com/docker-library/redis, file
# 7.0/debian/docker-entrypoint.sh at commit e92049967d6baa9b4b3d6fd950553e6458e61f13,
# BSD 3-clause licence, Copyright (c) 2014 Docker, Inc. (see images/redis/LICENSE).
# Unchanged but for this header: gosu comes from Debian's package here.
#
set -e

# first arg is `-f` or `--some-option`
# or first arg is `something.conf`
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

# allow the container to be started with `--user`
if [ "$1" = 'redis-server' -a "$(id -u)" = '0' ]; then
	find . \! -user redis -exec chown redis '{}' +
	exec gosu redis "$0" "$@"
fi

# set an appropriate umask (if one isn't set already)
# - https://github.com/docker-library/redis/issues/305
# - https://github.com/redis/redis/blob/bb875603fb7ff3f9d19aad906bd45d7db98d9a39/utils/systemd-redis_server.service#L37
um="$(umask)"
if [ "$um" = '0022' ]; then
	umask 0077
fi

exec "$@"
