// Lesson 01b (write your own op): the softplus op defined outside the library (values, its
// backward Node under gradcheck, wrong backwards caught, errors), and the lesson in --quick mode.
#include <cmath>
#include <string>
#include <vector>

#include "01b_write_your_own_op/softplus.h"
#include "lesson_runner.h"
#include "mmgrad/mmgrad.h"

using namespace mmgrad;
using lesson::softplus;

TEST_CASE("softplus: values match log1p(exp(x)) in both branches, in float64 and float32") {
  std::vector<double> xs = {-745.0, -40.0, -5.0, -1e-3, 0.0, 0.7, 3.0, 19.9, 20.5, 1e4};
  Tensor x = Tensor::from_vector(xs, {static_cast<int64_t>(xs.size())}, DType::Float64);
  std::vector<double> y = softplus(x).to_vector<double>();
  for (size_t i = 0; i < xs.size(); ++i) {
    double ref = xs[i] > 20 ? xs[i] : std::log1p(std::exp(xs[i]));
    INFO("x = " << xs[i] << " got " << y[i] << " want " << ref);
    CHECK(std::abs(y[i] - ref) <= 4e-16 * std::abs(ref));
  }
  CHECK(softplus(Tensor::scalar(1.0, DType::Float64)).item() ==
        doctest::Approx(1.3132616875182228).epsilon(1e-15));
  // beta: log(1 + e^(beta x)) / beta, and x itself where beta x > threshold
  CHECK(softplus(Tensor::scalar(0.5, DType::Float64), 2.0).item() ==
        doctest::Approx(std::log1p(std::exp(1.0)) / 2).epsilon(1e-15));
  CHECK(softplus(Tensor::scalar(11.0, DType::Float64), 2.0).item() == 11.0);
  // float32 does not overflow where the naive formula does
  std::vector<float> big =
      softplus(Tensor::from_vector({90.0, 200.0, -200.0}, {3}, DType::Float32)).to_vector<float>();
  CHECK(big[0] == 90.0f);
  CHECK(big[1] == 200.0f);
  CHECK(big[2] == 0.0f);
  CHECK(std::isnan(softplus(Tensor::scalar(NAN, DType::Float64)).item()));
}

TEST_CASE("softplus: its backward Node passes gradcheck and its math is sigmoid(beta x)") {
  manual_seed(7);
  Tensor x = (Tensor::randn({3, 4}, DType::Float64) * 4.0).requires_grad_();
  for (double beta : {1.0, 0.5, 3.0}) {
    GradcheckResult r =
        gradcheck([beta](const std::vector<Tensor>& in) { return softplus(in[0], beta); }, {x});
    INFO("beta " << beta << ": " << r.report);
    CHECK(r.ok);
  }
  // softplus_backward on its own (the exercise's function): g * sigmoid(beta x), g past the
  // threshold.
  Tensor xs = Tensor::from_vector({-2.0, 0.0, 1.0, 30.0}, {4}, DType::Float64);
  Tensor g = Tensor::from_vector({1.0, 2.0, -3.0, 5.0}, {4}, DType::Float64);
  std::vector<double> d = lesson::softplus_backward(xs, g).to_vector<double>();
  CHECK(d[0] == doctest::Approx(1.0 / (1.0 + std::exp(2.0))));
  CHECK(d[1] == doctest::Approx(1.0));
  CHECK(d[2] == doctest::Approx(-3.0 / (1.0 + std::exp(-1.0))));
  CHECK(d[3] == 5.0);
  std::vector<double> d2 = lesson::softplus_backward(xs, g, 2.0).to_vector<double>();
  CHECK(d2[2] == doctest::Approx(-3.0 / (1.0 + std::exp(-2.0))));
}

TEST_CASE("softplus: the graph holds one softplus Node that saves x and frees it after backward") {
  Tensor x = Tensor::from_vector({-1.0, 2.0}, {2}, DType::Float64).requires_grad_();
  Tensor y = softplus(x);
  REQUIRE(y.grad_fn());
  CHECK(std::string(y.grad_fn()->name()) == "softplus");
  CHECK(y.grad_fn()->saved_tensors_held() == 1);
  CHECK(y.grad_fn()->next.size() == 1);
  Tensor loss = sum(y);
  loss.backward();
  CHECK(y.grad_fn()->saved_tensors_held() == 0);
  CHECK_THROWS_AS(loss.backward(), Error);  // the saved x is gone: a second backward is an error
  std::vector<double> gx = x.grad().to_vector<double>();
  CHECK(gx[0] == doctest::Approx(1.0 / (1.0 + std::exp(1.0))));
  // no Node without a gradient to compute
  CHECK_FALSE(softplus(Tensor::from_vector({1.0}, {1}, DType::Float64)).grad_fn());
  {
    NoGradGuard no_grad;
    CHECK_FALSE(softplus(x).grad_fn());
  }
}

TEST_CASE("softplus: gradcheck catches a wrong backward") {
  Tensor x = Tensor::from_vector({-3.0, -0.5, 0.4, 2.5, 6.0}, {5}, DType::Float64).requires_grad_();
  auto sign_slip = [](const Tensor& v, const Tensor& g, double beta, double) {
    return g * sigmoid(v * -beta);
  };
  auto no_chain_rule = [](const Tensor& v, const Tensor&, double beta, double) {
    return sigmoid(v * beta);
  };
  for (lesson::SoftplusBackwardFn fn : {static_cast<lesson::SoftplusBackwardFn>(sign_slip),
                                        static_cast<lesson::SoftplusBackwardFn>(no_chain_rule)}) {
    GradcheckResult r = gradcheck(
        [fn](const std::vector<Tensor>& in) { return lesson::softplus_with_backward(in[0], fn); },
        {x});
    INFO(r.report);
    CHECK_FALSE(r.ok);
    CHECK(r.max_error > 0.05);
  }
}

TEST_CASE("softplus: bad inputs are errors naming softplus") {
  CHECK_THROWS_WITH_AS(softplus(Tensor::from_vector({1.0}, {1}, DType::Int64)),
                       doctest::Contains("softplus: expects a floating-point tensor"), Error);
  CHECK_THROWS_WITH_AS(softplus(Tensor::from_vector({1.0}, {1}), 0.0),
                       doctest::Contains("softplus: expects beta > 0"), Error);
  CHECK_THROWS_AS(softplus(Tensor()), Error);
}

TEST_CASE("lesson 01b: quick run, gradcheck, wrong backwards caught, held-out accuracy") {
  lesson_test::Run r = lesson_test::run_lesson("01b_write_your_own_op", "--quick");
  INFO(r.output);
  REQUIRE(r.status == 0);
  REQUIRE(r.has("test_acc"));
  CHECK(r["forward_err"] < 1e-15);
  CHECK(r["gradcheck_ok"] == 1.0);
  CHECK(r["gradcheck_err"] < 1e-6);
  CHECK(r["wrong_caught"] == 2.0);
  // held-out two moons with noise 0.2: 0.964-0.972 over seeds 0-7
  CHECK(r["test_acc"] >= 0.94);
  CHECK(r.output.find("caught: gradcheck FAILED") != std::string::npos);
}
