// A fixed pool of threads that verify passwords, so that argon2id (tens of
// megabytes and milliseconds per check) never blocks lookup's event loop and
// a flood of logins cannot take more than `workers` checks' worth of memory.
//
// The threads are started before the role jails itself: the sandbox allows
// no new threads, and its filter is applied to these with TSYNC.
#pragma once

#include "common/unique_fd.h"
#include "lookup/password.h"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace maild {

struct AuthJob {
	uint64_t token = 0; // the caller's, returned with the result
	std::string phc;
	std::string password; // wiped once checked
};

struct AuthDone {
	uint64_t token = 0;
	VerifyResult result = VerifyResult::BadHash;
};

class AuthPool {
public:
	// Fatal if the threads or the eventfd cannot be created.
	AuthPool(unsigned workers, std::size_t max_queued);
	~AuthPool();
	AuthPool(const AuthPool &) = delete;
	AuthPool &operator=(const AuthPool &) = delete;

	// False (and the password wiped) when max_queued jobs already wait.
	bool submit(AuthJob job);
	// Readable while results wait to be taken.
	int notify_fd() const { return notify_.get(); }
	std::vector<AuthDone> take_done();

private:
	void work();

	UniqueFd notify_; // eventfd
	std::size_t max_queued_;
	std::mutex mutex_;
	std::condition_variable wake_;
	std::deque<AuthJob> jobs_;
	std::vector<AuthDone> done_;
	bool stopping_ = false;
	std::size_t running_ = 0; // threads that reached work()
	std::vector<std::thread> threads_;
};

} // namespace maild
