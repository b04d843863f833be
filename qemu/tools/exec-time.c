// SPDX-License-Identifier: Apache-2.0 OR MIT
/*
 * exec-time [-k LABEL] CMD [ARG...]: run CMD and print how long it ran.
 *
 * busybox's `time` counts in 10 ms ticks, and klpctl applies a small patch
 * in a few milliseconds, so this helper reads CLOCK_MONOTONIC just before
 * fork() and just after wait4() returns: the figure covers fork, exec, the
 * whole run and the exit, with nanosecond resolution.
 *
 * With -k LABEL it also writes "klptime: LABEL start" to /dev/kmsg before
 * the fork and "klptime: LABEL end" after the wait. The kernel stamps those
 * lines with the same clock as its own messages (livepatch's "starting
 * patching transition", "patching complete"), so the guest can place the
 * kernel's events inside klpctl's run without comparing two clocks.
 *
 * Prints "exec-time: <ns> ns" to stderr and exits with CMD's status.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* One open per line: the kernel rate-limits writers per open file. */
static void kmsg(const char *label, const char *what)
{
	char line[256];
	int fd, n;

	if (!label)
		return;
	n = snprintf(line, sizeof(line), "klptime: %s %s\n", label, what);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		perror("exec-time: /dev/kmsg");
		return;
	}
	if (write(fd, line, (size_t)n) != n)
		perror("exec-time: write /dev/kmsg");
	close(fd);
}

static long long ns(const struct timespec *t)
{
	return (long long)t->tv_sec * 1000000000LL + t->tv_nsec;
}

int main(int argc, char **argv)
{
	const char *label = NULL;
	struct timespec t0, t1;
	int status, first = 1;
	pid_t pid;

	if (argc > 2 && strcmp(argv[1], "-k") == 0) {
		label = argv[2];
		first = 3;
	}
	if (argc <= first) {
		fputs("usage: exec-time [-k LABEL] CMD [ARG...]\n", stderr);
		return 2;
	}
	kmsg(label, "start");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid = fork();
	if (pid < 0) {
		perror("exec-time: fork");
		return 1;
	}
	if (pid == 0) {
		execvp(argv[first], argv + first);
		perror("exec-time: exec");
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0) {
		perror("exec-time: waitpid");
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	kmsg(label, "end");
	fprintf(stderr, "exec-time: %lld ns\n", ns(&t1) - ns(&t0));
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
