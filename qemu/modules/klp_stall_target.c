// SPDX-License-Identifier: GPL-2.0
/*
 * klp_stall_target - a plain module whose kthread parks inside
 * klp_stall_target_wait() until /sys/module/klp_stall_target/parameters/release
 * is set to 1.
 *
 * While the thread is parked its stack holds klp_stall_target_wait(), so a
 * livepatch of that function (klp_stall) cannot finish its transition: this
 * is how the tests produce a stalled transition on demand. The thread is
 * named klptest_parked so tests can look for it in klpctl's report of
 * blocking tasks.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/err.h>
#include <linux/kernel.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/sched.h>

static bool release;
module_param(release, bool, 0644);
MODULE_PARM_DESC(release, "Set to 1 to let the thread leave klp_stall_target_wait()");

/* How many times the thread left the wait function; 0 while it is parked. */
static int left;
module_param(left, int, 0444);
MODULE_PARM_DESC(left, "Times the thread has returned from klp_stall_target_wait()");

/*
 * What klp_stall_target_wait() returned: -1 until it returns, 0 for the
 * original function, 1 when klp_stall's replacement ran instead.
 */
static int result = -1;
module_param(result, int, 0444);
MODULE_PARM_DESC(result, "Return value of klp_stall_target_wait(): 0 original, 1 patched");

static struct task_struct *klp_stall_thread;

int klp_stall_target_wait(void);

/*
 * Not static and not inlined, so the symbol exists under this exact name and
 * the call really leaves a frame on the thread's stack.
 */
noinline int klp_stall_target_wait(void)
{
	while (!READ_ONCE(release) && !kthread_should_stop())
		msleep_interruptible(50);
	return 0;
}

static int klp_stall_thread_fn(void *data)
{
	pr_info("thread parked in klp_stall_target_wait\n");
	WRITE_ONCE(result, klp_stall_target_wait());
	WRITE_ONCE(left, left + 1);
	pr_info("thread released\n");
	/* Park outside the patched function until rmmod. */
	while (!kthread_should_stop())
		msleep_interruptible(50);
	return 0;
}

static int __init klp_stall_target_init(void)
{
	klp_stall_thread = kthread_run(klp_stall_thread_fn, NULL, "klptest_parked");
	return PTR_ERR_OR_ZERO(klp_stall_thread);
}

static void __exit klp_stall_target_exit(void)
{
	kthread_stop(klp_stall_thread);
}

module_init(klp_stall_target_init);
module_exit(klp_stall_target_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("klpctl test: kthread that parks in a function until released");
