#pragma once
// Awaiting blocking work that runs elsewhere: a request handler on a network thread hands a
// heavy computation (a PromQL evaluation, a compaction) to another executor, such as a bounded
// pool, and its connection's strand stays free for other requests meanwhile:
//
//   asio::awaitable<Response> handle(const Request& r) {
//     auto work = [&r, options = options_] { return evaluate(r, options); };
//     co_return co_await net::run_on(pool_executor, std::move(work));
//   }
//
// The callable is a named local, never a lambda written inside the co_await expression: GCC 12
// destroys a temporary closure (or aggregate) of a co_await's full-expression twice, so one that
// owns anything (a std::function, a string) is freed twice. CMakeLists.txt refuses a compiler
// that does so (cmake/coroutine_temporaries_probe.cpp); the rule keeps the code correct anyway.

#include <atomic>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/is_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

namespace kpid::net {

namespace detail {

// What run_on hands back: fn's result, or std::monostate when fn returns void (an awaited
// value needs a type).
template <typename R>
using RunOnValue = std::optional<std::conditional_t<std::is_void_v<R>, std::monostate, R>>;

// One run_on: owns the awaiting coroutine's completion handler until it is completed, exactly
// once, on the awaiting coroutine's own executor.
template <typename Handler, typename Fn, typename R>
class RunOnOp {
 public:
  RunOnOp(Handler handler, Fn fn)
      : work_(boost::asio::make_work_guard(handler)),
        handler_(std::move(handler)),
        fn_(std::move(fn)) {}
  RunOnOp(const RunOnOp&) = delete;
  RunOnOp& operator=(const RunOnOp&) = delete;

  // A task the executor destroyed without running it still resumes the coroutine, with an
  // error, rather than destroying it on whichever thread dropped the task.
  ~RunOnOp() {
    if (done_.load()) return;
    try {
      finish(std::make_exception_ptr(boost::system::system_error(
                 boost::asio::error::operation_aborted, "run_on: the executor dropped the task")),
             {});
    } catch (...) {  // out of memory while posting: the handler goes with this op
    }
  }

  void run() {
    RunOnValue<R> value;
    std::exception_ptr error;
    try {
      if constexpr (std::is_void_v<R>) {
        fn_();
        value.emplace();
      } else {
        value.emplace(fn_());
      }
    } catch (...) {
      error = std::current_exception();
    }
    finish(error, std::move(value));
  }

  // Resumes the awaiting coroutine on its executor; later calls do nothing.
  void finish(std::exception_ptr error, RunOnValue<R> value) {
    if (done_.exchange(true)) return;
    auto executor = work_.get_executor();
    boost::asio::post(executor,
                      [handler = std::move(handler_), error, value = std::move(value)]() mutable {
                        std::move(handler)(error, std::move(value));
                      });
    work_.reset();
  }

 private:
  boost::asio::executor_work_guard<boost::asio::associated_executor_t<Handler>> work_;
  Handler handler_;
  Fn fn_;
  std::atomic<bool> done_{false};
};

}  // namespace detail

// Runs `fn()` on `executor` (any Asio executor: a thread_pool's, another io_context's, a
// strand, or a pool's own executor type) and resumes the awaiting coroutine on its own executor
// with fn's result. An exception from fn is rethrown in the awaiting coroutine, and so is one the
// executor throws when handed the task (a full queue refusing it, say). A task the executor
// destroys without running it resumes the coroutine with boost::system::system_error
// (operation_aborted).
//
// Lifetime: the awaiting coroutine stays suspended, its frame alive, until fn has returned; it
// is never resumed early (a connection aborted meanwhile only closes its socket), so fn may
// refer to the frame's locals, the request for one. While fn runs, the caller's executor has
// outstanding work (its io_context::run does not return for lack of it). Whatever else fn uses
// must outlive it, and the executor must run or drop every task it accepted before the caller's
// io_context is destroyed.
template <typename Executor, typename Fn>
requires(boost::asio::execution::is_executor<Executor>::value ||
         boost::asio::is_executor<Executor>::value)
    boost::asio::awaitable<std::invoke_result_t<Fn&>> run_on(Executor executor, Fn fn) {
  using R = std::invoke_result_t<Fn&>;
  using Value = detail::RunOnValue<R>;
  auto initiation = [executor](auto handler, Fn f) mutable {
    using Op = detail::RunOnOp<decltype(handler), Fn, R>;
    auto op = std::make_shared<Op>(std::move(handler), std::move(f));
    try {
      boost::asio::post(executor, [op] { op->run(); });
    } catch (...) {
      op->finish(std::current_exception(), {});
    }
  };
  Value value = co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&,
                                                     void(std::exception_ptr, Value)>(
      std::move(initiation), boost::asio::use_awaitable, std::move(fn));
  if constexpr (!std::is_void_v<R>) co_return std::move(*value);
}

}  // namespace kpid::net
