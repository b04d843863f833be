// SPDX-License-Identifier: GPL-2.0
#define KLP_CUMUL_VERSION 3
#include "klp_cumul.h"
