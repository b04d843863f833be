// SPDX-License-Identifier: GPL-2.0
/*
 * klp_basic - the smallest useful livepatch for the klpctl test rig.
 *
 * Replaces cmdline_proc_show() so that reading /proc/cmdline returns a fixed
 * line. That gives the tests a behavioural oracle: the patch is live exactly
 * when /proc/cmdline says so.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/module.h>
#include <linux/seq_file.h>

static int klp_basic_cmdline_show(struct seq_file *m, void *v)
{
	seq_puts(m, "klpctl-test: basic patched\n");
	return 0;
}

static struct klp_func klp_basic_funcs[] = {
	{
		.old_name = "cmdline_proc_show",
		.new_func = klp_basic_cmdline_show,
	},
	{}
};

static struct klp_object klp_basic_objs[] = {
	{
		/* A NULL name means vmlinux. */
		.funcs = klp_basic_funcs,
	},
	{}
};

static struct klp_patch klp_basic_patch = {
	.mod = THIS_MODULE,
	.objs = klp_basic_objs,
};

static int __init klp_basic_init(void)
{
	return klp_enable_patch(&klp_basic_patch);
}

static void __exit klp_basic_exit(void)
{
}

module_init(klp_basic_init);
module_exit(klp_basic_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("klpctl test: livepatch changing /proc/cmdline");
MODULE_INFO(livepatch, "Y");
