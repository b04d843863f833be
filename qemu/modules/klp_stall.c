// SPDX-License-Identifier: GPL-2.0
/*
 * klp_stall - livepatch of klp_stall_target_wait() in module klp_stall_target.
 *
 * Applied while klp_stall_target's thread klptest_parked is parked in the
 * original, the transition cannot complete until the thread is released,
 * because the old function stays on its stack.
 *
 * The replacement parks a caller whose gate has a hold flag while that flag
 * is set (klp_stall_target's hold_new, for its thread klptest_hold): with the
 * new function on that thread's stack, a transition back to unpatched cannot
 * complete either.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/kernel.h>
#include <linux/kthread.h>
#include <linux/livepatch.h>
#include <linux/module.h>

#include "klp_stall.h"

static int klp_stall_wait(const struct klp_stall_gate *gate)
{
	if (gate->hold && READ_ONCE(*gate->hold)) {
		if (gate->holding)
			WRITE_ONCE(*gate->holding, 1);
		while (READ_ONCE(*gate->hold) && !kthread_should_stop())
			msleep_interruptible(50);
		if (gate->holding)
			WRITE_ONCE(*gate->holding, 0);
	}
	return 1;
}

static struct klp_func klp_stall_funcs[] = {
	{
		.old_name = "klp_stall_target_wait",
		.new_func = klp_stall_wait,
	},
	{}
};

static struct klp_object klp_stall_objs[] = {
	{
		.name = "klp_stall_target",
		.funcs = klp_stall_funcs,
	},
	{}
};

static struct klp_patch klp_stall_patch = {
	.mod = THIS_MODULE,
	.objs = klp_stall_objs,
};

static int __init klp_stall_init(void)
{
	return klp_enable_patch(&klp_stall_patch);
}

static void __exit klp_stall_exit(void)
{
}

module_init(klp_stall_init);
module_exit(klp_stall_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("klpctl test: livepatch whose transitions stall on demand");
MODULE_INFO(livepatch, "Y");
