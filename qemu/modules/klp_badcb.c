// SPDX-License-Identifier: GPL-2.0
/*
 * klp_badcb - a livepatch whose pre-patch callback refuses with -ENODEV.
 *
 * klp_enable_patch() runs the callback before patching anything, so module
 * init fails with the callback's error and finit_module() returns ENODEV.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/module.h>
#include <linux/seq_file.h>

static int klp_badcb_cmdline_show(struct seq_file *m, void *v)
{
	seq_puts(m, "klpctl-test: badcb patched (must never be seen)\n");
	return 0;
}

static int klp_badcb_pre_patch(struct klp_object *obj)
{
	pr_info("pre-patch callback refusing with -ENODEV\n");
	return -ENODEV;
}

static struct klp_func klp_badcb_funcs[] = {
	{
		.old_name = "cmdline_proc_show",
		.new_func = klp_badcb_cmdline_show,
	},
	{}
};

static struct klp_object klp_badcb_objs[] = {
	{
		.funcs = klp_badcb_funcs,
		.callbacks = {
			.pre_patch = klp_badcb_pre_patch,
		},
	},
	{}
};

static struct klp_patch klp_badcb_patch = {
	.mod = THIS_MODULE,
	.objs = klp_badcb_objs,
};

static int __init klp_badcb_init(void)
{
	return klp_enable_patch(&klp_badcb_patch);
}

static void __exit klp_badcb_exit(void)
{
}

module_init(klp_badcb_init);
module_exit(klp_badcb_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("klpctl test: livepatch whose pre-patch callback fails");
MODULE_INFO(livepatch, "Y");
