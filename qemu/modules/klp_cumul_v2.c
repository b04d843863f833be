// SPDX-License-Identifier: GPL-2.0
#define KLP_CUMUL_VERSION 2
#include "klp_cumul.h"
