/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What klp_stall_target and its livepatch klp_stall share: the argument of
 * the patched function klp_stall_target_wait().
 *
 * The target module owns every knob (module parameters); the argument tells
 * whichever version of the function runs where they are, so the livepatch
 * needs no symbol of the target module.
 */
#ifndef KLP_STALL_H
#define KLP_STALL_H

#include <linux/types.h>

struct klp_stall_gate {
	/*
	 * The original function waits while *release is false; NULL: it
	 * returns at once.
	 */
	const bool *release;
	/*
	 * The replacement waits while *hold is true; NULL: it returns at
	 * once.
	 */
	const bool *hold;
	/* Set to 1 by the replacement while it waits on *hold, else 0. */
	int *holding;
};

/* Returns 0 in the original, 1 in klp_stall's replacement. */
int klp_stall_target_wait(const struct klp_stall_gate *gate);

#endif
