// SPDX-License-Identifier: GPL-2.0
/*
 * klp_big - klp_basic's patch plus 16 MiB of read-only ballast, so the .ko is
 * large enough to show whether klpctl's memory use grows with bundle size.
 *
 * The ballast is initialised (one non-zero byte) so it lands in a PROGBITS
 * section and occupies file space, unlike a zero array that would go to .bss.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/module.h>
#include <linux/seq_file.h>
#include <linux/sizes.h>

static const u8 klp_big_ballast[SZ_16M] __used __section(".rodata.klp_big") = { 0x5a };

static int klp_big_cmdline_show(struct seq_file *m, void *v)
{
	/* Read the ballast so no tool can prove it unused. */
	seq_printf(m, "klpctl-test: big patched %02x\n",
		   READ_ONCE(klp_big_ballast[0]));
	return 0;
}

static struct klp_func klp_big_funcs[] = {
	{
		.old_name = "cmdline_proc_show",
		.new_func = klp_big_cmdline_show,
	},
	{}
};

static struct klp_object klp_big_objs[] = {
	{
		.funcs = klp_big_funcs,
	},
	{}
};

static struct klp_patch klp_big_patch = {
	.mod = THIS_MODULE,
	.objs = klp_big_objs,
};

static int __init klp_big_init(void)
{
	return klp_enable_patch(&klp_big_patch);
}

static void __exit klp_big_exit(void)
{
}

module_init(klp_big_init);
module_exit(klp_big_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("klpctl test: 16 MiB livepatch for memory measurements");
MODULE_INFO(livepatch, "Y");
