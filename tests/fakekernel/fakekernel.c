/*
 * A fake kernel for klpctl's host tests (see docs/fake-kernel.md).
 *
 *   fakekernel BOOTDIR [-r] [-k N] [-s|-w N:FROM:TO] [-o PATH]... [-l NAME=ACTION]...
 *              -- PROGRAM [ARG]...
 *
 * Runs PROGRAM in a private mount namespace in which BOOTDIR stands in for
 * one boot of a machine, and under ptrace, which stands in for the kernel's
 * module loader. Nothing PROGRAM does can reach the real module loader:
 * every finit_module, init_module and delete_module is answered here and
 * never executed.
 *
 * BOOTDIR holds, bind-mounted over the real paths:
 *   run/      -> /run            kernel/ -> /sys/kernel
 *   module/   -> /sys/module     cmdline -> /proc/cmdline
 *   kmsg      -> /dev/kmsg       modules -> /proc/modules
 *   boot_id   -> /proc/sys/kernel/random/boot_id (an empty file when
 *                BOOTDIR has none: the boot id cannot be read)
 *   uptime    seconds since this boot, as CLOCK_BOOTTIME reports it.
 *
 * A module load creates /sys/kernel/livepatch/<name>/{enabled,transition}
 * and /sys/module/<name>/{refcnt,taint}, as a livepatch's init does, and
 * answers with ACTION for that module name (default ok):
 *   ok       enabled 1, transition 0: live at once;
 *   replace  as ok, and an atomic replace: every other patch's directory
 *            vanishes (their modules stay loaded, as in the kernel);
 *   stall    enabled 1, transition 1: the transition never finishes;
 *   ERRNO    a number: the load fails with that errno, nothing is created;
 *   crash    PROGRAM is killed (SIGKILL) at the load, nothing is created:
 *            the machine died while loading.
 * -r makes `replace` the default action.
 * Writing 0 to a patch's `enabled` ends its (reverse) transition at once:
 * the directory vanishes at PROGRAM's next system call.
 * delete_module fails with EBUSY while the patch directory exists, ENOENT
 * for an unknown module, and otherwise removes /sys/module/<name>.
 * -k N kills PROGRAM (SIGKILL) at the entry of its N-th system call.
 * -s N:FROM:TO renames FROM over TO at the entry of PROGRAM's N-th system
 * call (a file swapped while PROGRAM works on it); -w N:FROM:TO instead
 * writes FROM's contents over TO's in place (the same inode changes under
 * PROGRAM's open descriptors). Either happens at most once, and FROM is
 * gone afterwards, so the caller can tell whether it happened.
 * -o PATH makes PATH read-only in the namespace (a read-only file system).
 *
 * Time is virtual: sleeps return at once and move PROGRAM's monotonic and
 * boot-time clocks forward by what was asked, so a 60 s timeout costs no
 * wall time.
 *
 * Exit status: PROGRAM's, 128 + signal when it was killed, 125 when this
 * tool itself failed (its message on stderr).
 *
 * x86_64 only (system call numbers and registers).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NR_NANOSLEEP 35
#define NR_CLOCK_GETTIME 228
#define NR_CLOCK_NANOSLEEP 230
#define NR_INIT_MODULE 175
#define NR_DELETE_MODULE 176
#define NR_FINIT_MODULE 313

static const char *bootdir;
static pid_t child;
static int replace_all;
static long kill_at = -1;
static long change_at = -1;
static int change_in_place;
static char *change_from, *change_to;
static char *actions[64];
static char *readonly[8];
static int nreadonly;
static int nactions;
static long long offset_ns; /* virtual time slept */
static long long uptime_s;

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("fakekernel: ", stderr);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, " (%s)\n", strerror(errno));
	va_end(ap);
	if (child > 0)
		kill(child, SIGKILL);
	exit(125);
}

static void put(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || close(fd))
		die("cannot write %s", path);
}

static void bind(const char *what, const char *where)
{
	char src[4096];
	snprintf(src, sizeof src, "%s/%s", bootdir, what);
	if (mount(src, where, NULL, MS_BIND, NULL))
		die("cannot bind %s over %s", src, where);
}

/* The boot: a private mount namespace with BOOTDIR over the real paths. */
static void enter_boot(void)
{
	char p[4096];
	FILE *f;

	if (unshare(CLONE_NEWNS))
		die("unshare(CLONE_NEWNS)");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		die("cannot make / private");
	bind("run", "/run");
	bind("kernel", "/sys/kernel");
	bind("module", "/sys/module");
	bind("cmdline", "/proc/cmdline");
	/* Absent on a kernel without modules; then klpctl finds none either. */
	if (access("/dev/kmsg", F_OK) == 0)
		bind("kmsg", "/dev/kmsg");
	if (access("/proc/modules", F_OK) == 0)
		bind("modules", "/proc/modules");
	snprintf(p, sizeof p, "%s/boot_id", bootdir);
	bind(access(p, F_OK) == 0 ? "boot_id" : "empty", "/proc/sys/kernel/random/boot_id");
	for (int i = 0; i < nreadonly; i++)
		if (mount(readonly[i], readonly[i], NULL, MS_BIND, NULL) ||
		    mount(NULL, readonly[i], NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL))
			die("cannot make %s read-only", readonly[i]);
	snprintf(p, sizeof p, "%s/uptime", bootdir);
	f = fopen(p, "r");
	if (!f || fscanf(f, "%lld", &uptime_s) != 1)
		die("cannot read %s", p);
	fclose(f);
}

static long peek_regs(struct user_regs_struct *r)
{
	return ptrace(PTRACE_GETREGS, child, 0, r);
}

/* PROGRAM's memory at `addr`, through /proc/PID/mem. */
static ssize_t mem(int write_it, unsigned long addr, void *buf, size_t len)
{
	char p[64];
	ssize_t n;
	int fd;
	snprintf(p, sizeof p, "/proc/%d/mem", child);
	fd = open(p, write_it ? O_RDWR : O_RDONLY);
	if (fd < 0)
		die("cannot open %s", p);
	n = write_it ? pwrite(fd, buf, len, addr) : pread(fd, buf, len, addr);
	close(fd);
	return n;
}

/* The module name from an image's .modinfo (`name=` after a NUL). */
static int module_name(const char *img, size_t len, char *name, size_t cap)
{
	for (size_t i = 0; i + 6 < len; i++) {
		if (memcmp(img + i, "\0name=", 6) == 0) {
			size_t j = i + 6, k = 0;
			while (j < len && img[j] && k + 1 < cap)
				name[k++] = img[j++];
			name[k] = 0;
			return k > 0;
		}
	}
	return 0;
}

static const char *action_for(const char *name)
{
	size_t n = strlen(name);
	for (int i = 0; i < nactions; i++)
		if (strncmp(actions[i], name, n) == 0 && actions[i][n] == '=')
			return actions[i] + n + 1;
	return replace_all ? "replace" : "ok";
}

static int lp_path(char *p, size_t cap, const char *name, const char *attr)
{
	return snprintf(p, cap, "/sys/kernel/livepatch/%s%s%s", name, attr ? "/" : "", attr ? attr : "");
}

static void rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[4096];
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

/* What the kernel does with a loaded livepatch; returns the syscall's
 * result (0 or -errno), or 1 when PROGRAM was killed. */
static long load(const char *img, size_t len)
{
	char name[64], p[4096];
	const char *act;
	DIR *d;
	struct dirent *e;

	if (!module_name(img, len, name, sizeof name))
		return -ENOEXEC;
	act = action_for(name);
	if (strcmp(act, "crash") == 0) {
		kill(child, SIGKILL);
		return 1;
	}
	if (strcmp(act, "ok") && strcmp(act, "stall") && strcmp(act, "replace"))
		return -atol(act);
	snprintf(p, sizeof p, "/sys/module/%s", name);
	if (mkdir(p, 0755) && errno == EEXIST)
		return -EEXIST;
	snprintf(p, sizeof p, "/sys/module/%s/refcnt", name);
	put(p, "0\n");
	snprintf(p, sizeof p, "/sys/module/%s/taint", name);
	put(p, "OK\n");
	if (strcmp(act, "replace") == 0 && (d = opendir("/sys/kernel/livepatch"))) {
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			lp_path(p, sizeof p, e->d_name, NULL);
			rm_tree(p);
		}
		closedir(d);
	}
	lp_path(p, sizeof p, name, NULL);
	if (mkdir(p, 0755))
		die("cannot create %s", p);
	lp_path(p, sizeof p, name, "enabled");
	put(p, "1\n");
	lp_path(p, sizeof p, name, "transition");
	put(p, strcmp(act, "stall") ? "0\n" : "1\n");
	return 0;
}

static long delete_module(const char *name)
{
	char p[4096];
	struct stat st;
	lp_path(p, sizeof p, name, NULL);
	if (stat(p, &st) == 0)
		return -EBUSY;
	snprintf(p, sizeof p, "/sys/module/%s", name);
	if (stat(p, &st))
		return -ENOENT;
	rm_tree(p);
	return 0;
}

/* Patches whose `enabled` reads 0 finish their reverse transition. */
static void settle_disables(void)
{
	DIR *d = opendir("/sys/kernel/livepatch");
	struct dirent *e;
	char p[4096], v[8] = "";
	if (!d)
		return;
	while ((e = readdir(d))) {
		FILE *f;
		if (e->d_name[0] == '.')
			continue;
		lp_path(p, sizeof p, e->d_name, "enabled");
		f = fopen(p, "r");
		if (!f)
			continue;
		if (!fgets(v, sizeof v, f))
			v[0] = 0;
		fclose(f);
		if (v[0] == '0') {
			lp_path(p, sizeof p, e->d_name, NULL);
			rm_tree(p);
		}
	}
	closedir(d);
}

/* -s / -w: FROM over TO, by rename or by rewriting TO's inode. */
static void change_file(void)
{
	char buf[65536];
	ssize_t n;
	int in, out;

	if (!change_in_place) {
		if (rename(change_from, change_to))
			die("cannot rename %s over %s", change_from, change_to);
		return;
	}
	in = open(change_from, O_RDONLY);
	out = open(change_to, O_WRONLY | O_TRUNC);
	if (in < 0 || out < 0)
		die("cannot open %s or %s", change_from, change_to);
	while ((n = read(in, buf, sizeof buf)) > 0)
		if (write(out, buf, n) != n)
			die("cannot write %s", change_to);
	if (n < 0 || close(in) || close(out) || unlink(change_from))
		die("cannot copy %s over %s", change_from, change_to);
}

static long long req_ns(unsigned long addr)
{
	struct timespec ts;
	if (mem(0, addr, &ts, sizeof ts) != sizeof ts)
		return 0;
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* At a syscall entry: returns 1 to skip it (its result `*ret`, set at the
 * exit), 0 to let it run, -1 when PROGRAM was killed. */
static int on_entry(struct user_regs_struct *r, long *ret)
{
	static long count;
	char buf[256];

	settle_disables();
	if (++count == kill_at) {
		kill(child, SIGKILL);
		return -1;
	}
	if (count == change_at)
		change_file();
	switch (r->orig_rax) {
	case NR_FINIT_MODULE: {
		char p[64], *img;
		struct stat st;
		int fd;
		snprintf(p, sizeof p, "/proc/%d/fd/%d", child, (int)r->rdi);
		fd = open(p, O_RDONLY);
		if (fd < 0 || fstat(fd, &st)) {
			*ret = -EBADF;
			return 1;
		}
		img = malloc(st.st_size + 1);
		if (!img || pread(fd, img, st.st_size, 0) != st.st_size)
			die("cannot read the module");
		close(fd);
		*ret = load(img, st.st_size);
		free(img);
		return *ret == 1 ? -1 : 1;
	}
	case NR_INIT_MODULE: {
		char *img = malloc(r->rsi + 1);
		if (!img || mem(0, r->rdi, img, r->rsi) != (ssize_t)r->rsi)
			die("cannot read the module image");
		*ret = load(img, r->rsi);
		free(img);
		return *ret == 1 ? -1 : 1;
	}
	case NR_DELETE_MODULE:
		if (mem(0, r->rdi, buf, sizeof buf - 1) <= 0) {
			*ret = -EFAULT;
			return 1;
		}
		buf[sizeof buf - 1] = 0;
		*ret = delete_module(buf);
		return 1;
	case NR_NANOSLEEP:
		offset_ns += req_ns(r->rdi);
		*ret = 0;
		return 1;
	case NR_CLOCK_NANOSLEEP:
		/* Relative sleeps only; klpctl makes no others. */
		offset_ns += req_ns(r->rdx);
		*ret = 0;
		return 1;
	}
	return 0;
}

/* At the exit of a clock_gettime that ran: virtual time. */
static void on_clock_exit(struct user_regs_struct *r)
{
	struct timespec ts;
	long long ns;
	if ((long)r->rax != 0 || (r->rdi != CLOCK_MONOTONIC && r->rdi != CLOCK_BOOTTIME))
		return;
	if (mem(0, r->rsi, &ts, sizeof ts) != sizeof ts)
		return;
	if (r->rdi == CLOCK_BOOTTIME)
		ns = uptime_s * 1000000000LL + offset_ns;
	else
		ns = ts.tv_sec * 1000000000LL + ts.tv_nsec + offset_ns;
	ts.tv_sec = ns / 1000000000LL;
	ts.tv_nsec = ns % 1000000000LL;
	mem(1, r->rsi, &ts, sizeof ts);
}

int main(int argc, char **argv)
{
	int i, status, in_call = 0, skipped = 0;
	long ret = 0;
	struct user_regs_struct r;

	if (argc < 4)
		die("usage: fakekernel BOOTDIR [-r] [-k N] [-s|-w N:FROM:TO] [-o PATH]... "
		    "[-l NAME=ACTION]... -- PROGRAM [ARG]...");
	bootdir = argv[1];
	for (i = 2; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "-r"))
			replace_all = 1;
		else if (!strcmp(argv[i], "-k") && i + 1 < argc)
			kill_at = atol(argv[++i]);
		else if ((!strcmp(argv[i], "-s") || !strcmp(argv[i], "-w")) && i + 1 < argc) {
			change_in_place = argv[i][1] == 'w';
			change_at = strtol(argv[++i], &change_from, 10);
			if (*change_from != ':' || !(change_to = strchr(++change_from, ':')))
				die("%s wants N:FROM:TO", argv[i - 1]);
			*change_to++ = 0;
		} else if (!strcmp(argv[i], "-o") && i + 1 < argc && nreadonly < 8)
			readonly[nreadonly++] = argv[++i];
		else if (!strcmp(argv[i], "-l") && i + 1 < argc && nactions < 64)
			actions[nactions++] = argv[++i];
		else
			die("unknown option %s", argv[i]);
	}
	if (i + 1 >= argc)
		die("no PROGRAM after --");
	enter_boot();

	child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		if (ptrace(PTRACE_TRACEME, 0, 0, 0))
			die("ptrace(PTRACE_TRACEME)");
		raise(SIGSTOP);
		execv(argv[i + 1], argv + i + 1);
		die("cannot run %s", argv[i + 1]);
	}
	if (waitpid(child, &status, 0) != child || !WIFSTOPPED(status))
		die("the traced process did not stop");
	if (ptrace(PTRACE_SETOPTIONS, child, 0,
		   PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL | PTRACE_O_TRACEEXEC))
		die("ptrace(PTRACE_SETOPTIONS)");
	int sig = 0;
	for (;;) {
		/* ESRCH: killed here, its exit status comes next */
		if (ptrace(PTRACE_SYSCALL, child, 0, sig) && errno != ESRCH)
			die("ptrace(PTRACE_SYSCALL)");
		sig = 0;
		if (waitpid(child, &status, 0) != child)
			die("waitpid");
		if (WIFEXITED(status))
			return WEXITSTATUS(status);
		if (WIFSIGNALED(status))
			return 128 + WTERMSIG(status);
		if (!WIFSTOPPED(status))
			continue;
		if (WSTOPSIG(status) != (SIGTRAP | 0x80)) {
			/* exec event or a real signal: pass real signals on */
			if (WSTOPSIG(status) != SIGTRAP && WSTOPSIG(status) != SIGSTOP)
				sig = WSTOPSIG(status);
			continue;
		}
		if (peek_regs(&r))
			die("ptrace(PTRACE_GETREGS)");
		if (!in_call) {
			in_call = 1;
			int k = on_entry(&r, &ret);
			if (k < 0)
				continue; /* killed: its exit status comes next */
			skipped = k;
			if (skipped) {
				r.orig_rax = -1; /* the kernel runs no system call */
				if (ptrace(PTRACE_SETREGS, child, 0, &r))
					die("ptrace(PTRACE_SETREGS)");
			}
		} else {
			in_call = 0;
			if (skipped) {
				r.rax = ret;
				if (ptrace(PTRACE_SETREGS, child, 0, &r))
					die("ptrace(PTRACE_SETREGS)");
				skipped = 0;
			} else if (r.orig_rax == NR_CLOCK_GETTIME) {
				on_clock_exit(&r);
			}
		}
	}
}
