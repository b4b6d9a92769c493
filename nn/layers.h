// Every nn module in one include: the Module base, initialisation and the layers.
#pragma once

#include "mmgrad/nn/activation.h"
#include "mmgrad/nn/attention.h"
#include "mmgrad/nn/container.h"
#include "mmgrad/nn/conv.h"
#include "mmgrad/nn/dropout.h"
#include "mmgrad/nn/embedding.h"
#include "mmgrad/nn/init.h"
#include "mmgrad/nn/linear.h"
#include "mmgrad/nn/mlp.h"
#include "mmgrad/nn/module.h"
#include "mmgrad/nn/normalization.h"
#include "mmgrad/nn/pooling.h"
#include "mmgrad/nn/resnet.h"
#include "mmgrad/nn/state_dict.h"
#include "mmgrad/nn/transformer.h"
#include "mmgrad/nn/vit.h"
