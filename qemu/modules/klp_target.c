// SPDX-License-Identifier: GPL-2.0
/*
 * klp_target - a plain module exposing /proc/klp_target, which prints
 * "klp_target: original". klp_modobj patches it; the patch may be applied
 * before or after this module loads.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>

int klp_target_show(struct seq_file *m, void *v);

/* Not static, so klp_modobj can name it; reached only through a pointer. */
noinline int klp_target_show(struct seq_file *m, void *v)
{
	seq_puts(m, "klp_target: original\n");
	return 0;
}

static int __init klp_target_init(void)
{
	if (!proc_create_single("klp_target", 0444, NULL, klp_target_show))
		return -ENOMEM;
	return 0;
}

static void __exit klp_target_exit(void)
{
	remove_proc_entry("klp_target", NULL);
}

module_init(klp_target_init);
module_exit(klp_target_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("klpctl test: module with a /proc file for klp_modobj to patch");
