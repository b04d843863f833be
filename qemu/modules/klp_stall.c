// SPDX-License-Identifier: GPL-2.0
/*
 * klp_stall - livepatch of klp_stall_target_wait() in module klp_stall_target.
 *
 * Applied while klp_stall_target's thread is parked, the transition cannot
 * complete until the thread is released, because the old function stays on
 * its stack.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/module.h>

/* The replacement does not wait at all. */
static int klp_stall_wait(void)
{
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
MODULE_DESCRIPTION("klpctl test: livepatch whose transition stalls on demand");
MODULE_INFO(livepatch, "Y");
