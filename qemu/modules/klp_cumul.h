/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Body shared by klp_cumul_v1..v3: cumulative (atomic replace) livepatches
 * that differ only in the line /proc/cmdline prints. Each klp_cumul_vN.c
 * defines KLP_CUMUL_VERSION and includes this file, so every version is its
 * own module with its own name in /sys/kernel/livepatch.
 */
#ifndef KLP_CUMUL_VERSION
#error "define KLP_CUMUL_VERSION before including klp_cumul.h"
#endif

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/module.h>
#include <linux/seq_file.h>
#include <linux/stringify.h>

static int klp_cumul_cmdline_show(struct seq_file *m, void *v)
{
	seq_puts(m, "klpctl-test: cumulative v" __stringify(KLP_CUMUL_VERSION) "\n");
	return 0;
}

static struct klp_func klp_cumul_funcs[] = {
	{
		.old_name = "cmdline_proc_show",
		.new_func = klp_cumul_cmdline_show,
	},
	{}
};

static struct klp_object klp_cumul_objs[] = {
	{
		.funcs = klp_cumul_funcs,
	},
	{}
};

static struct klp_patch klp_cumul_patch = {
	.mod = THIS_MODULE,
	.objs = klp_cumul_objs,
	/* Completing the transition disables every older patch. */
	.replace = true,
};

static int __init klp_cumul_init(void)
{
	return klp_enable_patch(&klp_cumul_patch);
}

static void __exit klp_cumul_exit(void)
{
}

module_init(klp_cumul_init);
module_exit(klp_cumul_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("klpctl test: cumulative livepatch v" __stringify(KLP_CUMUL_VERSION));
MODULE_INFO(livepatch, "Y");
