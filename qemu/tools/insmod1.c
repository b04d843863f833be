// SPDX-License-Identifier: Apache-2.0 OR MIT
/*
 * insmod1 MODULE.ko [PARAM=VALUE...]: load a plain module with exactly one
 * finit_module call, the way kmod's insmod does.
 *
 * busybox's insmod retries a failed finit_module with init_module, so a
 * module whose load the kernel refuses is refused twice, and every kernel
 * message of the refusal appears twice in the log. The kernel's livepatch
 * selftests compare that log line by line, so their plain target modules
 * are loaded with this instead.
 *
 * On failure prints "insmod1: MODULE: <strerror>" to stderr and exits 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char params[4096] = "";
	size_t used = 0;
	int fd, i;

	if (argc < 2) {
		fprintf(stderr, "usage: insmod1 MODULE.ko [PARAM=VALUE...]\n");
		return 2;
	}
	for (i = 2; i < argc; i++) {
		int n = snprintf(params + used, sizeof(params) - used, "%s%s",
				 i > 2 ? " " : "", argv[i]);
		if (n < 0 || (size_t)n >= sizeof(params) - used) {
			fprintf(stderr, "insmod1: parameters too long\n");
			return 2;
		}
		used += (size_t)n;
	}
	fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "insmod1: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if (syscall(SYS_finit_module, fd, params, 0) != 0) {
		fprintf(stderr, "insmod1: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	return 0;
}
