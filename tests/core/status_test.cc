#include "core/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace bourse::core {
namespace {

TEST(StatusTest, OkByDefault) {
  Status st;
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kOk);
  EXPECT_EQ(st.ToString(), "ok");
  EXPECT_EQ(Status::Ok(), Status());
}

TEST(StatusTest, EveryCodeHasItsName) {
  const std::pair<Status, std::string_view> cases[] = {
      {InvalidArgument("m"), "invalid_argument"},
      {NotFound("m"), "not_found"},
      {AlreadyExists("m"), "already_exists"},
      {FailedPrecondition("m"), "failed_precondition"},
      {PermissionDenied("m"), "permission_denied"},
      {Unauthenticated("m"), "unauthenticated"},
      {ResourceExhausted("m"), "resource_exhausted"},
      {Unavailable("m"), "unavailable"},
      {Internal("m"), "internal"},
  };
  for (const auto& [st, name] : cases) {
    EXPECT_FALSE(st.ok());
    EXPECT_EQ(StatusCodeName(st.code()), name);
    EXPECT_EQ(st.message(), "m");
    EXPECT_EQ(st.ToString(), std::string(name) + ": m");
  }
  EXPECT_EQ(StatusCodeName(StatusCode::kOk), "ok");
}

TEST(StatusTest, WithContextPrefixesAndKeepsTheCode) {
  Status st = NotFound("no such slice").WithContext("bind");
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_EQ(st.message(), "bind: no such slice");
  EXPECT_TRUE(Status().WithContext("x").ok());
  EXPECT_EQ(Status().WithContext("x").message(), "");
}

TEST(StatusTest, Equality) {
  EXPECT_EQ(InvalidArgument("a"), InvalidArgument("a"));
  EXPECT_FALSE(InvalidArgument("a") == InvalidArgument("b"));
  EXPECT_FALSE(InvalidArgument("a") == NotFound("a"));
}

Result<int> Half(int n) {
  if (n % 2 != 0) return InvalidArgument(std::to_string(n) + " is odd");
  return n / 2;
}

Result<int> Quarter(int n) {
  BOURSE_ASSIGN_OR_RETURN(int h, Half(n));
  BOURSE_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status CheckEven(int n) {
  BOURSE_RETURN_IF_ERROR(Half(n).status());
  return Status::Ok();
}

TEST(ResultTest, ValueOrStatus) {
  Result<int> ok = Half(8);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 4);
  EXPECT_EQ(ok.value(), 4);
  EXPECT_TRUE(ok.status().ok());
  Result<int> bad = Half(3);
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "3 is odd");
  EXPECT_EQ(bad.value_or(-1), -1);
  EXPECT_EQ(ok.value_or(-1), 4);
}

TEST(ResultTest, MacrosPropagate) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().message(), "3 is odd");
  EXPECT_EQ(Quarter(5).status().message(), "5 is odd");
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_EQ(CheckEven(5).code(), StatusCode::kInvalidArgument);
}

TEST(ResultTest, MoveOnlyValues) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = *std::move(r);
  EXPECT_EQ(*p, 7);
  Result<std::unique_ptr<int>> e = NotFound("none");
  EXPECT_EQ(std::move(e).status().code(), StatusCode::kNotFound);
}

TEST(ResultTest, ArrowAccess) {
  Result<std::string> r = std::string("abc");
  EXPECT_EQ(r->size(), 3u);
  r->push_back('d');
  EXPECT_EQ(*r, "abcd");
}

using ResultDeathTest = ::testing::Test;

TEST_F(ResultDeathTest, ValueOfAFailedResultAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Result<int> bad = Half(3);
  EXPECT_DEATH({ [[maybe_unused]] int v = bad.value(); }, "");
}

TEST_F(ResultDeathTest, ResultFromAnOkStatusAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH({ Result<int> r{Status::Ok()}; }, "");
}

}  // namespace
}  // namespace bourse::core
