// Reference for task 0.1: lesson 00's own backward (lessons/00_micrograd/micrograd.cpp).
#include "tasks.h"

namespace mmgrad::exercises::solution {

void value_backward(const micrograd::ValuePtr& root) { micrograd::backward(root); }

}  // namespace mmgrad::exercises::solution
