// SPDX-License-Identifier: Apache-2.0 OR MIT
/*
 * peak-rss CMD [ARG...]: run CMD and print its peak resident set size.
 *
 * busybox's `time -v` reports the child's ru_maxrss, but the kernel counts
 * the pre-exec copy of the forking process too, and busybox's own image
 * (several MiB) then hides what klpctl really uses. This helper is small, so
 * the figure it prints is klpctl's.
 *
 * Prints "peak-rss: <KiB> KiB" to stderr and exits with CMD's status.
 */
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct rusage ru;
	int status;
	pid_t pid;

	if (argc < 2) {
		fputs("usage: peak-rss CMD [ARG...]\n", stderr);
		return 2;
	}
	pid = fork();
	if (pid < 0) {
		perror("peak-rss: fork");
		return 1;
	}
	if (pid == 0) {
		execvp(argv[1], argv + 1);
		perror("peak-rss: exec");
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) < 0) {
		perror("peak-rss: wait4");
		return 1;
	}
	fprintf(stderr, "peak-rss: %ld KiB\n", ru.ru_maxrss);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
