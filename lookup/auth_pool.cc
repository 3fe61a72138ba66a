#include "lookup/auth_pool.h"

#include "common/log.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

namespace maild {

AuthPool::AuthPool(unsigned workers, std::size_t max_queued)
    : notify_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)), max_queued_(max_queued)
{
	if (!notify_)
		fatal("eventfd");
	for (unsigned i = 0; i < workers; i++)
		threads_.emplace_back([this] { work(); });
	// A new thread still makes system calls of its own before it runs
	// work() (glibc registers rseq): they must be behind it before the
	// sandbox is installed.
	std::unique_lock lock(mutex_);
	wake_.wait(lock, [this] { return running_ == threads_.size(); });
}

AuthPool::~AuthPool()
{
	{
		std::lock_guard lock(mutex_);
		stopping_ = true;
	}
	wake_.notify_all();
	for (auto &thread : threads_)
		thread.join();
	for (auto &job : jobs_)
		wipe_secret(job.password);
}

bool AuthPool::submit(AuthJob job)
{
	{
		std::lock_guard lock(mutex_);
		if (jobs_.size() >= max_queued_) {
			wipe_secret(job.password);
			return false;
		}
		jobs_.push_back(std::move(job));
	}
	wake_.notify_one();
	return true;
}

std::vector<AuthDone> AuthPool::take_done()
{
	uint64_t count;
	// Only a counter: how many results were added does not matter.
	(void)!read(notify_.get(), &count, sizeof(count));
	std::lock_guard lock(mutex_);
	return std::exchange(done_, {});
}

void AuthPool::work()
{
	{
		std::lock_guard lock(mutex_);
		running_++;
	}
	wake_.notify_all();
	for (;;) {
		AuthJob job;
		{
			std::unique_lock lock(mutex_);
			wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
			if (stopping_)
				return;
			job = std::move(jobs_.front());
			jobs_.pop_front();
		}
		AuthDone done{job.token, verify_password(job.phc, job.password)};
		wipe_secret(job.password);
		{
			std::lock_guard lock(mutex_);
			done_.push_back(done);
		}
		uint64_t one = 1;
		// The eventfd counter cannot overflow at this rate; a failure would
		// only delay the result to the next wakeup.
		(void)!write(notify_.get(), &one, sizeof(one));
	}
}

} // namespace maild
