// SPDX-License-Identifier: GPL-2.0
/*
 * klp_stall_target - a plain module with two kthreads that call
 * klp_stall_target_wait(), the function klp_stall patches.
 *
 * klptest_parked (thread A) calls it once at load and parks inside the
 * original until /sys/module/klp_stall_target/parameters/release is 1. While
 * it is parked its stack holds the original function, so enabling klp_stall
 * cannot finish: a stalled transition on demand.
 *
 * klptest_hold (thread B) sleeps outside the function and calls it every
 * 100 ms; the original returns at once for B. Once B has been switched to the
 * patched state it runs klp_stall's replacement, which parks while the
 * parameter hold_new is 1. Then B's stack holds the *new* function, so
 * disabling klp_stall (or reversing its transition) cannot finish. With
 * hold_new at 0 (the default) B never parks and blocks nothing.
 *
 * The threads' names let tests look for them in klpctl's report of
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

#include "klp_stall.h"

static bool release;
module_param(release, bool, 0644);
MODULE_PARM_DESC(release, "Set to 1 to let klptest_parked leave klp_stall_target_wait()");

/* How many times thread A left the wait function; 0 while it is parked. */
static int left;
module_param(left, int, 0444);
MODULE_PARM_DESC(left, "Times klptest_parked has returned from klp_stall_target_wait()");

/*
 * What klp_stall_target_wait() returned to thread A: -1 until it returns, 0
 * for the original function, 1 when klp_stall's replacement ran instead.
 */
static int result = -1;
module_param(result, int, 0444);
MODULE_PARM_DESC(result, "Return value of klp_stall_target_wait() in klptest_parked: 0 original, 1 patched");

static bool hold_new;
module_param(hold_new, bool, 0644);
MODULE_PARM_DESC(hold_new, "While 1, klp_stall's replacement keeps klptest_hold inside it");

static int holding;
module_param(holding, int, 0444);
MODULE_PARM_DESC(holding, "1 while klptest_hold waits inside klp_stall's replacement");

/* Thread B's calls that returned, and what the last one returned. */
static int hold_calls;
module_param(hold_calls, int, 0444);
MODULE_PARM_DESC(hold_calls, "Calls of klp_stall_target_wait() by klptest_hold that returned");

static int hold_result = -1;
module_param(hold_result, int, 0444);
MODULE_PARM_DESC(hold_result, "Last return value in klptest_hold: -1 none yet, 0 original, 1 patched");

static const struct klp_stall_gate gate_parked = { .release = &release };
static const struct klp_stall_gate gate_hold = { .hold = &hold_new, .holding = &holding };

static struct task_struct *thread_parked, *thread_hold;

/*
 * Not static and not inlined, so the symbol exists under this exact name and
 * the call really leaves a frame on the thread's stack. noipa as well: the
 * original always returns 0, and gcc 14 (7.x kernels) propagates that into
 * the callers, which then store a constant 0 in hold_result even when the
 * livepatch's replacement ran and returned 1. A patched function's callers
 * must not assume anything about its body.
 */
noinline __attribute__((__noipa__)) int klp_stall_target_wait(const struct klp_stall_gate *gate)
{
	while (gate->release && !READ_ONCE(*gate->release) && !kthread_should_stop())
		msleep_interruptible(50);
	return 0;
}

static int thread_parked_fn(void *data)
{
	pr_info("thread parked in klp_stall_target_wait\n");
	WRITE_ONCE(result, klp_stall_target_wait(&gate_parked));
	WRITE_ONCE(left, left + 1);
	pr_info("thread released\n");
	/* Park outside the patched function until rmmod. */
	while (!kthread_should_stop())
		msleep_interruptible(50);
	return 0;
}

static int thread_hold_fn(void *data)
{
	int r;

	while (!kthread_should_stop()) {
		/* Sleep here, outside the patched function, between calls. */
		msleep_interruptible(100);
		r = klp_stall_target_wait(&gate_hold);
		WRITE_ONCE(hold_result, r);
		WRITE_ONCE(hold_calls, hold_calls + 1);
	}
	return 0;
}

static int __init klp_stall_target_init(void)
{
	thread_parked = kthread_run(thread_parked_fn, NULL, "klptest_parked");
	if (IS_ERR(thread_parked))
		return PTR_ERR(thread_parked);
	thread_hold = kthread_run(thread_hold_fn, NULL, "klptest_hold");
	if (IS_ERR(thread_hold)) {
		kthread_stop(thread_parked);
		return PTR_ERR(thread_hold);
	}
	return 0;
}

static void __exit klp_stall_target_exit(void)
{
	kthread_stop(thread_hold);
	kthread_stop(thread_parked);
}

module_init(klp_stall_target_init);
module_exit(klp_stall_target_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("klpctl test: kthreads that park in a patched function on demand");
