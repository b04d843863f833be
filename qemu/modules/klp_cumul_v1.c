// SPDX-License-Identifier: GPL-2.0
#define KLP_CUMUL_VERSION 1
#include "klp_cumul.h"
