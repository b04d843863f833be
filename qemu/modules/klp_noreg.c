// SPDX-License-Identifier: GPL-2.0
/*
 * klp_noreg - says it is a livepatch (MODULE_INFO(livepatch, Y), so pack
 * accepts it and the kernel taints K when it loads) but registers none:
 * its init enables no patch. klpctl must notice that no
 * /sys/kernel/livepatch/klp_noreg appeared and unload it again.
 */
#include <linux/kernel.h>
#include <linux/module.h>

static int __init klp_noreg_init(void)
{
	return 0;
}

static void __exit klp_noreg_exit(void)
{
}

module_init(klp_noreg_init);
module_exit(klp_noreg_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("klpctl test: claims livepatch=Y, registers no patch");
