// SPDX-License-Identifier: GPL-2.0
/*
 * klp_panic - a livepatch that is bad on purpose, for the crash-loop guard.
 *
 * Replaces version_proc_show() with a function that panics the kernel, so
 * the patch loads and its transition completes normally, and the machine
 * dies as soon as anything reads /proc/version. That is "a patch that
 * panics right after its transition": the reboot scenario reads
 * /proc/version once the boot has applied it, and the next boot must find
 * it quarantined.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/module.h>
#include <linux/panic.h>
#include <linux/seq_file.h>

static int klp_panic_version_show(struct seq_file *m, void *v)
{
	panic("klptest: klp_panic patched version_proc_show");
	return 0;
}

static struct klp_func klp_panic_funcs[] = {
	{
		.old_name = "version_proc_show",
		.new_func = klp_panic_version_show,
	},
	{}
};

static struct klp_object klp_panic_objs[] = {
	{
		/* A NULL name means vmlinux. */
		.funcs = klp_panic_funcs,
	},
	{}
};

static struct klp_patch klp_panic_patch = {
	.mod = THIS_MODULE,
	.objs = klp_panic_objs,
};

static int __init klp_panic_init(void)
{
	return klp_enable_patch(&klp_panic_patch);
}

static void __exit klp_panic_exit(void)
{
}

module_init(klp_panic_init);
module_exit(klp_panic_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("klpctl test: livepatch whose /proc/version panics the kernel");
MODULE_INFO(livepatch, "Y");
