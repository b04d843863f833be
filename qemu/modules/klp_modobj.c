// SPDX-License-Identifier: GPL-2.0
/*
 * klp_modobj - livepatch of klp_target_show() in module klp_target.
 *
 * The patched object is a module, so the kernel patches it whenever both are
 * loaded, in either order: /proc/klp_target then prints "klp_target: patched".
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/module.h>
#include <linux/seq_file.h>

static int klp_modobj_show(struct seq_file *m, void *v)
{
	seq_puts(m, "klp_target: patched\n");
	return 0;
}

static struct klp_func klp_modobj_funcs[] = {
	{
		.old_name = "klp_target_show",
		.new_func = klp_modobj_show,
	},
	{}
};

static struct klp_object klp_modobj_objs[] = {
	{
		.name = "klp_target",
		.funcs = klp_modobj_funcs,
	},
	{}
};

static struct klp_patch klp_modobj_patch = {
	.mod = THIS_MODULE,
	.objs = klp_modobj_objs,
};

static int __init klp_modobj_init(void)
{
	return klp_enable_patch(&klp_modobj_patch);
}

static void __exit klp_modobj_exit(void)
{
}

module_init(klp_modobj_init);
module_exit(klp_modobj_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("klpctl test: livepatch of a function in module klp_target");
MODULE_INFO(livepatch, "Y");
