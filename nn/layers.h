// Every nn module in one include: the Module base, initialisation and the layers.
#pragma once

#include "nn/activation.h"
#include "nn/attention.h"
#include "nn/container.h"
#include "nn/conv.h"
#include "nn/dropout.h"
#include "nn/embedding.h"
#include "nn/init.h"
#include "nn/linear.h"
#include "nn/mlp.h"
#include "nn/module.h"
#include "nn/normalization.h"
#include "nn/pooling.h"
#include "nn/resnet.h"
#include "nn/state_dict.h"
#include "nn/transformer.h"
#include "nn/vit.h"
