// maild-load: the benchmark's load generator. One process, one libevent
// loop, many concurrent sessions of one protocol (a module: protocol.h)
// against one server over plain TCP.
//
//   load mode: every session runs transactions back to back until the
//   duration is over or the message count is reached, then quits; prints
//   the results as one JSON object on stdout.
//   idle mode: opens the connections, introduces each (greeting, EHLO),
//   prints {"event":"established",...} when all are, then holds them open
//   and silent until stdin (a pipe or terminal) closes or SIGINT/SIGTERM,
//   and prints the summary.
//
// bench/run.py drives it; `maild-load --help` lists the options.
#include "bench/load/message.h"
#include "bench/load/protocol.h"
#include "common/crlf.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace maild::bench {

namespace {

using Clock = std::chrono::steady_clock;

// Longest reply line accepted: RFC 5321 section 4.5.3.1.5 says 512 with the
// CRLF; some servers send longer, none sends this much.
constexpr std::size_t kMaxReplyLine = 4096;
// Distinct error texts kept for the report (each with its count).
constexpr std::size_t kMaxErrorKinds = 10;

enum class Mode { Load, Idle };

struct Options {
	std::string protocol = "smtp";
	Mode mode = Mode::Load;
	std::string host = "127.0.0.1";
	std::string port = "25";
	std::size_t sessions = 1;
	std::size_t size = 10 * 1024;
	double duration = 5;        // seconds, load mode, unless messages is set
	uint64_t messages = 0;      // total transactions, load mode; 0: by duration
	double timeout = 0;         // give up after this many seconds; 0: duration + 30
	std::size_t ramp = 64;      // connections at most being set up at once
	SessionOptions session{"bench.invalid", "load@bench.invalid", "", true};
};

void usage(FILE *out)
{
	std::fputs(
	    "usage: maild-load --connect HOST:PORT --rcpt ADDRESS [options]\n"
	    "  --protocol NAME      the protocol module (smtp)\n"
	    "  --mode load|idle     run transactions, or hold introduced connections idle (load)\n"
	    "  --sessions N         concurrent sessions or idle connections (1)\n"
	    "  --size BYTES         message size, header included; K and M suffixes (10K)\n"
	    "  --duration SECONDS   how long to send (5)\n"
	    "  --messages N         send N messages in all instead\n"
	    "  --timeout SECONDS    give up then, counting what is unfinished as failed (duration + 30)\n"
	    "  --ramp N             connections being set up at once at most (64)\n"
	    "  --from ADDRESS       envelope sender (load@bench.invalid)\n"
	    "  --helo NAME          EHLO name (bench.invalid)\n"
	    "  --no-pipelining      one command per write even when PIPELINING is offered\n",
	    out);
}

std::optional<uint64_t> parse_number(std::string_view text)
{
	uint64_t multiplier = 1;
	if (!text.empty() && (text.back() == 'K' || text.back() == 'k')) {
		multiplier = 1024;
		text.remove_suffix(1);
	} else if (!text.empty() && (text.back() == 'M' || text.back() == 'm')) {
		multiplier = 1024 * 1024;
		text.remove_suffix(1);
	}
	uint64_t value = 0;
	auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
	if (ec != std::errc() || end != text.data() + text.size() || text.empty())
		return std::nullopt;
	return value * multiplier;
}

std::optional<double> parse_seconds(std::string_view text)
{
	// std::from_chars for double needs a newer libstdc++ than some targets.
	std::string copy(text);
	char *end = nullptr;
	errno = 0;
	double value = std::strtod(copy.c_str(), &end);
	if (copy.empty() || errno != 0 || *end != '\0' || !(value > 0))
		return std::nullopt;
	return value;
}

// HOST:PORT, or [IPV6]:PORT.
bool split_host_port(std::string_view text, std::string &host, std::string &port)
{
	std::size_t colon = text.rfind(':');
	if (colon == std::string_view::npos || colon + 1 == text.size())
		return false;
	std::string_view h = text.substr(0, colon);
	if (h.size() >= 2 && h.front() == '[' && h.back() == ']')
		h = h.substr(1, h.size() - 2);
	if (h.empty())
		return false;
	host = h;
	port = text.substr(colon + 1);
	return true;
}

bool parse_options(int argc, char **argv, Options &options)
{
	for (int i = 1; i < argc; i++) {
		std::string_view arg = argv[i];
		if (arg == "--help") {
			usage(stdout);
			std::exit(0);
		}
		if (arg == "--no-pipelining") {
			options.session.pipelining = false;
			continue;
		}
		static constexpr std::array<std::string_view, 12> kValueOptions = {"--connect", "--protocol", "--mode",
		    "--sessions", "--size", "--messages", "--ramp", "--duration", "--timeout", "--rcpt", "--from",
		    "--helo"};
		if (std::find(kValueOptions.begin(), kValueOptions.end(), arg) == kValueOptions.end()) {
			std::fprintf(stderr, "maild-load: unknown option %s\n", argv[i]);
			return false;
		}
		if (i + 1 >= argc) {
			std::fprintf(stderr, "maild-load: %s: needs a value\n", argv[i]);
			return false;
		}
		std::string_view value = argv[++i];
		bool ok = true;
		if (arg == "--connect") {
			ok = split_host_port(value, options.host, options.port);
		} else if (arg == "--protocol") {
			options.protocol = value;
		} else if (arg == "--mode") {
			ok = value == "load" || value == "idle";
			options.mode = value == "idle" ? Mode::Idle : Mode::Load;
		} else if (arg == "--sessions" || arg == "--size" || arg == "--messages" || arg == "--ramp") {
			auto number = parse_number(value);
			ok = number.has_value() && (*number > 0 || arg == "--size");
			uint64_t n = number.value_or(0);
			if (arg == "--sessions")
				options.sessions = n;
			else if (arg == "--size")
				options.size = n;
			else if (arg == "--messages")
				options.messages = n;
			else
				options.ramp = n;
		} else if (arg == "--duration" || arg == "--timeout") {
			auto seconds = parse_seconds(value);
			ok = seconds.has_value();
			(arg == "--duration" ? options.duration : options.timeout) = seconds.value_or(0);
		} else if (arg == "--rcpt") {
			options.session.recipient = value;
		} else if (arg == "--from") {
			options.session.sender = value;
		} else {
			options.session.hello_name = value; // --helo
		}
		if (!ok) {
			std::fprintf(stderr, "maild-load: %s: bad value \"%s\"\n", argv[i - 1], argv[i]);
			return false;
		}
	}
	if (options.mode == Mode::Load && options.session.recipient.empty()) {
		std::fprintf(stderr, "maild-load: --rcpt is required in load mode\n");
		return false;
	}
	if (options.timeout == 0)
		options.timeout = options.duration + 30;
	return true;
}

// A JSON string literal.
std::string json_string(std::string_view text)
{
	std::string out = "\"";
	for (unsigned char c : text) {
		if (c == '"' || c == '\\') {
			out += '\\';
			out += static_cast<char>(c);
		} else if (c < 0x20 || c >= 0x7f) {
			char escape[8];
			std::snprintf(escape, sizeof escape, "\\u%04x", c);
			out += escape;
		} else {
			out += static_cast<char>(c);
		}
	}
	return out + "\"";
}

// Six decimals: microseconds for seconds (the start time too), nanoseconds
// for milliseconds.
std::string json_number(double value)
{
	char text[64];
	std::snprintf(text, sizeof text, "%.6f", value);
	return text;
}

struct EventBaseDeleter {
	void operator()(event_base *base) const { event_base_free(base); }
};
struct EventDeleter {
	void operator()(event *ev) const { event_free(ev); }
};
struct BufferEventDeleter {
	void operator()(bufferevent *bev) const { bufferevent_free(bev); }
};
using EventBasePtr = std::unique_ptr<event_base, EventBaseDeleter>;
using EventPtr = std::unique_ptr<event, EventDeleter>;
using BufferEventPtr = std::unique_ptr<bufferevent, BufferEventDeleter>;

class Runner;

// One connection: the socket (a bufferevent), its strict line framing, and
// the protocol session that speaks on it; it passes the session's events on
// to the runner, naming itself.
class Connection final : public Transport, public SessionEvents {
public:
	explicit Connection(Runner &runner) : runner_(runner) {}

	// context: the session's; its transport and events are this connection.
	bool open(event_base *base, const sockaddr *address, socklen_t length, const Protocol &protocol,
	    const SessionContext &context);
	// Closes the socket, silently (idle mode's end).
	void drop();
	bool finished() const { return finished_; }

	// Transport.
	void send(std::string_view bytes) override;
	void send_shared(std::string_view bytes) override;
	void finish(bool failed, std::string_view why) override;
	// SessionEvents.
	void ready(bool pipelined) override;
	void transaction(bool accepted, Clock::duration latency, std::string_view reply) override;

private:
	static void on_read(bufferevent *bev, void *arg);
	static void on_event(bufferevent *bev, short what, void *arg);
	void read_lines();

	Runner &runner_;
	BufferEventPtr bev_;
	LineReader reader_{kMaxReplyLine};
	std::unique_ptr<Session> session_;
	bool introduced_ = false;
	bool finished_ = false;
};

struct Results {
	uint64_t accepted = 0;
	uint64_t refused = 0;
	uint64_t ready = 0;
	uint64_t pipelined = 0; // sessions that used PIPELINING
	uint64_t failed_sessions = 0;
	std::vector<uint32_t> latencies_us; // of accepted transactions
	std::map<std::string, uint64_t> errors;
	uint64_t other_errors = 0; // past kMaxErrorKinds distinct texts
	Clock::time_point last_end;

	void error(std::string_view what)
	{
		auto it = errors.find(std::string(what));
		if (it != errors.end())
			it->second++;
		else if (errors.size() < kMaxErrorKinds)
			errors.emplace(what, 1);
		else
			other_errors++;
	}
};

class Runner final : public Workload {
public:
	Runner(const Options &options, const Protocol &protocol, const MessageSource &messages)
	    : options_(options), protocol_(protocol), messages_(messages)
	{
	}

	// 0 when the run worked (whatever the server answered), 1 when it could
	// not start.
	int run();

	Next next() override;
	void connection_ready(bool pipelined);
	void transaction(bool accepted, Clock::duration latency, std::string_view reply);
	void connection_finished(bool was_setting_up, bool failed, std::string_view why);

private:
	bool resolve();
	bool add_event(evutil_socket_t fd, short what, event_callback_fn callback, std::optional<double> after);
	void open_more();
	void stop_now(std::string_view why);
	void check_done();
	void print_results();

	static void on_duration(evutil_socket_t, short, void *arg);
	static void on_timeout(evutil_socket_t, short, void *arg);
	static void on_signal(evutil_socket_t, short, void *arg);
	static void on_stdin(evutil_socket_t, short, void *arg);

	const Options &options_;
	const Protocol &protocol_;
	const MessageSource &messages_;
	EventBasePtr base_;
	std::vector<EventPtr> events_;
	sockaddr_storage address_{};
	socklen_t address_length_ = 0;
	std::vector<std::unique_ptr<Connection>> connections_;
	std::size_t setting_up_ = 0; // opened, neither introduced nor finished
	std::size_t finished_ = 0;
	uint64_t issued_ = 0; // transactions handed out
	bool stopping_ = false;
	bool announced_ = false;
	bool opening_ = false;
	Results results_;
	Clock::time_point started_;
	double started_unix_ = 0;
};

bool Connection::open(event_base *base, const sockaddr *address, socklen_t length, const Protocol &protocol,
    const SessionContext &context)
{
	bev_.reset(bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE));
	if (!bev_)
		return false;
	session_ = protocol.make(context);
	bufferevent_setcb(bev_.get(), on_read, nullptr, on_event, this);
	if (bufferevent_enable(bev_.get(), EV_READ | EV_WRITE) != 0)
		return false;
	return bufferevent_socket_connect(bev_.get(), address, static_cast<int>(length)) == 0;
}

void Connection::drop()
{
	finished_ = true;
	bev_.reset();
}

void Connection::send(std::string_view bytes)
{
	if (bev_)
		bufferevent_write(bev_.get(), bytes.data(), bytes.size());
}

void Connection::send_shared(std::string_view bytes)
{
	if (bev_)
		evbuffer_add_reference(bufferevent_get_output(bev_.get()), bytes.data(), bytes.size(), nullptr, nullptr);
}

void Connection::finish(bool failed, std::string_view why)
{
	if (finished_)
		return;
	finished_ = true;
	// Freed here even inside its own callback: libevent holds a reference
	// to the bufferevent while it runs one and frees it after.
	bev_.reset();
	runner_.connection_finished(!introduced_, failed, why);
}

void Connection::ready(bool pipelined)
{
	introduced_ = true;
	runner_.connection_ready(pipelined);
}

void Connection::transaction(bool accepted, Clock::duration latency, std::string_view reply)
{
	runner_.transaction(accepted, latency, reply);
}

void Connection::on_read(bufferevent *, void *arg)
{
	static_cast<Connection *>(arg)->read_lines();
}

void Connection::read_lines()
{
	evbuffer *input = bufferevent_get_input(bev_.get());
	char chunk[16384];
	while (!finished_ && evbuffer_get_length(input) > 0) {
		int n = evbuffer_remove(input, chunk, sizeof chunk);
		if (n <= 0)
			break;
		reader_.feed(std::string_view(chunk, static_cast<std::size_t>(n)));
		for (;;) {
			std::string_view line;
			LineReader::Status status = reader_.next(line);
			if (status == LineReader::Status::NeedMore)
				break;
			if (status == LineReader::Status::Error) {
				finish(true, "reply framing: " + std::string(to_string(reader_.error())));
				return;
			}
			session_->on_line(line);
			if (finished_)
				return;
		}
	}
}

void Connection::on_event(bufferevent *, short what, void *arg)
{
	auto *self = static_cast<Connection *>(arg);
	if (what & BEV_EVENT_CONNECTED) {
		// Commands and the message go out as soon as they are written: a
		// transaction is a few small writes, and Nagle's algorithm would hold
		// each behind the server's delayed ACK.
		int one = 1;
		setsockopt(bufferevent_getfd(self->bev_.get()), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		self->session_->on_close("connection closed by the server");
	} else if (what & BEV_EVENT_ERROR) {
		int error = EVUTIL_SOCKET_ERROR();
		self->session_->on_close(evutil_socket_error_to_string(error));
	}
}

bool Runner::resolve()
{
	addrinfo hints{};
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	addrinfo *found = nullptr;
	int error = getaddrinfo(options_.host.c_str(), options_.port.c_str(), &hints, &found);
	if (error != 0) {
		std::fprintf(stderr, "maild-load: %s:%s: %s\n", options_.host.c_str(), options_.port.c_str(),
		    gai_strerror(error));
		return false;
	}
	std::memcpy(&address_, found->ai_addr, found->ai_addrlen);
	address_length_ = found->ai_addrlen;
	freeaddrinfo(found);
	return true;
}

bool Runner::add_event(evutil_socket_t fd, short what, event_callback_fn callback, std::optional<double> after)
{
	EventPtr ev(event_new(base_.get(), fd, what, callback, this));
	if (!ev)
		return false;
	timeval tv{};
	if (after) {
		auto micros = static_cast<int64_t>(*after * 1e6);
		tv.tv_sec = micros / 1000000;
		tv.tv_usec = static_cast<suseconds_t>(micros % 1000000);
	}
	if (event_add(ev.get(), after ? &tv : nullptr) != 0)
		return false;
	events_.push_back(std::move(ev));
	return true;
}

// Whether stdin can tell us to stop by closing: a pipe, a socket or a
// terminal. A file or /dev/null (a background job's stdin) is at its end
// from the start and cannot be polled; then only a signal stops idle mode.
bool stdin_is_watchable()
{
	struct stat st{};
	if (fstat(STDIN_FILENO, &st) != 0)
		return false;
	return S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || isatty(STDIN_FILENO);
}

int Runner::run()
{
	base_.reset(event_base_new());
	if (!base_ || !resolve())
		return 1;
	bool idle = options_.mode == Mode::Idle;
	bool ok = add_event(SIGINT, EV_SIGNAL | EV_PERSIST, on_signal, std::nullopt) &&
	    add_event(SIGTERM, EV_SIGNAL | EV_PERSIST, on_signal, std::nullopt);
	if (idle && stdin_is_watchable())
		ok = ok && add_event(STDIN_FILENO, EV_READ | EV_PERSIST, on_stdin, std::nullopt);
	else
		ok = ok && add_event(-1, 0, on_timeout, options_.timeout) &&
		    (options_.messages || add_event(-1, 0, on_duration, options_.duration));
	if (!ok) {
		std::fprintf(stderr, "maild-load: cannot set up the event loop\n");
		return 1;
	}
	started_ = Clock::now();
	started_unix_ = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
	connections_.reserve(options_.sessions);
	open_more();
	event_base_dispatch(base_.get());
	print_results();
	return 0;
}

// Opens connections until all are open or `ramp` are being set up: a
// thousand SYNs at once would overflow the server's listen queue and
// measure its retransmission timer.
void Runner::open_more()
{
	// A connection failing at once reports back into here.
	if (opening_)
		return;
	opening_ = true;
	while (connections_.size() < options_.sessions && setting_up_ < options_.ramp && !stopping_) {
		std::size_t index = connections_.size();
		connections_.push_back(std::make_unique<Connection>(*this));
		setting_up_++;
		Connection &connection = *connections_.back();
		SessionContext context{connection, connection, *this, options_.session, messages_, index};
		if (!connection.open(base_.get(), reinterpret_cast<const sockaddr *>(&address_), address_length_,
		        protocol_, context))
			connection.finish(true, "cannot open a connection");
	}
	opening_ = false;
	check_done();
}

Next Runner::next()
{
	if (options_.mode == Mode::Idle)
		return Next::Hold;
	if (stopping_ || (options_.messages && issued_ >= options_.messages))
		return Next::Quit;
	issued_++;
	return Next::Transaction;
}

void Runner::connection_ready(bool pipelined)
{
	results_.ready++;
	if (pipelined)
		results_.pipelined++;
	setting_up_--;
	open_more();
}

void Runner::transaction(bool accepted, Clock::duration latency, std::string_view reply)
{
	results_.last_end = Clock::now();
	if (!accepted) {
		results_.refused++;
		results_.error(reply);
		return;
	}
	results_.accepted++;
	auto micros = std::chrono::duration_cast<std::chrono::microseconds>(latency).count();
	results_.latencies_us.push_back(static_cast<uint32_t>(std::min<int64_t>(micros, UINT32_MAX)));
}

void Runner::connection_finished(bool was_setting_up, bool failed, std::string_view why)
{
	finished_++;
	if (was_setting_up)
		setting_up_--;
	if (failed) {
		results_.failed_sessions++;
		results_.error(why);
	}
	open_more();
}

// In idle mode: announces once every connection is introduced or failed.
// In load mode: ends the loop once every session is over.
void Runner::check_done()
{
	if (connections_.size() < options_.sessions && !stopping_)
		return;
	if (options_.mode == Mode::Idle) {
		if (setting_up_ == 0 && !announced_ && !stopping_) {
			announced_ = true;
			std::printf("{\"event\":\"established\",\"established\":%llu,\"failed_sessions\":%llu}\n",
			    static_cast<unsigned long long>(results_.ready),
			    static_cast<unsigned long long>(results_.failed_sessions));
			std::fflush(stdout);
		}
		return;
	}
	if (finished_ == connections_.size())
		event_base_loopexit(base_.get(), nullptr);
}

// Ends the run at once: what is unfinished counts as failed with `why`
// (the timeout), or, in idle mode (why empty), is simply closed.
void Runner::stop_now(std::string_view why)
{
	stopping_ = true;
	for (auto &connection : connections_) {
		if (connection->finished())
			continue;
		if (why.empty())
			connection->drop();
		else
			connection->finish(true, why);
	}
	event_base_loopexit(base_.get(), nullptr);
}

void Runner::on_duration(evutil_socket_t, short, void *arg)
{
	// Sessions finish the transaction in progress, then quit.
	static_cast<Runner *>(arg)->stopping_ = true;
}

void Runner::on_timeout(evutil_socket_t, short, void *arg)
{
	static_cast<Runner *>(arg)->stop_now("timeout");
}

void Runner::on_signal(evutil_socket_t, short, void *arg)
{
	auto *self = static_cast<Runner *>(arg);
	if (self->options_.mode == Mode::Idle)
		self->stop_now("");
	else
		self->stopping_ = true;
}

void Runner::on_stdin(evutil_socket_t fd, short, void *arg)
{
	char discard[512];
	ssize_t n = read(fd, discard, sizeof discard);
	if (n <= 0 && !(n < 0 && errno == EINTR))
		static_cast<Runner *>(arg)->stop_now("");
}

uint32_t percentile(const std::vector<uint32_t> &sorted, double fraction)
{
	if (sorted.empty())
		return 0;
	// Nearest rank.
	auto rank = static_cast<std::size_t>(fraction * static_cast<double>(sorted.size()) + 0.999999);
	return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

double cpu_seconds()
{
	rusage usage{};
	getrusage(RUSAGE_SELF, &usage);
	auto seconds = [](const timeval &tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; };
	return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

void Runner::print_results()
{
	std::vector<uint32_t> sorted = results_.latencies_us;
	std::sort(sorted.begin(), sorted.end());
	auto end = (results_.accepted + results_.refused > 0) ? results_.last_end : Clock::now();
	double elapsed = std::chrono::duration<double>(end - started_).count();
	double sum = 0;
	for (uint32_t us : sorted)
		sum += us;
	auto ms = [](double us) { return json_number(us / 1000.0); };

	std::string out = "{";
	out += "\"protocol\":" + json_string(protocol_.name);
	out += ",\"mode\":" + json_string(options_.mode == Mode::Idle ? "idle" : "load");
	out += ",\"target\":" + json_string(options_.host + ":" + options_.port);
	out += ",\"sessions\":" + std::to_string(options_.sessions);
	out += ",\"established\":" + std::to_string(results_.ready);
	out += ",\"pipelined_sessions\":" + std::to_string(results_.pipelined);
	out += ",\"failed_sessions\":" + std::to_string(results_.failed_sessions);
	if (options_.mode == Mode::Load) {
		out += ",\"message_bytes\":" + std::to_string(options_.size);
		out += ",\"started_unix\":" + json_number(started_unix_);
		out += ",\"elapsed_s\":" + json_number(elapsed);
		out += ",\"accepted\":" + std::to_string(results_.accepted);
		out += ",\"refused\":" + std::to_string(results_.refused);
		out += ",\"msgs_per_s\":" + json_number(elapsed > 0 ? results_.accepted / elapsed : 0);
		out += ",\"latency_ms\":{\"p50\":" + ms(percentile(sorted, 0.50)) + ",\"p90\":" +
		    ms(percentile(sorted, 0.90)) + ",\"p99\":" + ms(percentile(sorted, 0.99)) + ",\"max\":" +
		    ms(sorted.empty() ? 0 : sorted.back()) + ",\"mean\":" +
		    ms(sorted.empty() ? 0 : sum / static_cast<double>(sorted.size())) + "}";
	}
	out += ",\"client_cpu_s\":" + json_number(cpu_seconds());
	out += ",\"errors\":{";
	bool first = true;
	for (const auto &[text, count] : results_.errors) {
		out += (first ? "" : ",") + json_string(text) + ":" + std::to_string(count);
		first = false;
	}
	if (results_.other_errors)
		out += (first ? "" : ",") + std::string("\"(other)\":") + std::to_string(results_.other_errors);
	out += "}}\n";
	std::fputs(out.c_str(), stdout);
	std::fflush(stdout);
}

// Room for every connection: the soft limit up to the hard one, and the
// hard one too when we may (root).
void raise_file_limit(std::size_t connections)
{
	rlim_t wanted = static_cast<rlim_t>(connections) + 64;
	rlimit limit{};
	if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= wanted)
		return;
	rlimit raised{std::max(wanted, limit.rlim_cur), std::max(wanted, limit.rlim_max)};
	if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
		return;
	raised = {std::min(wanted, limit.rlim_max), limit.rlim_max};
	setrlimit(RLIMIT_NOFILE, &raised);
	if (raised.rlim_cur < wanted)
		std::fprintf(stderr, "maild-load: only %llu file descriptors: some connections will fail\n",
		    static_cast<unsigned long long>(raised.rlim_cur));
}

} // namespace

} // namespace maild::bench

int main(int argc, char **argv)
{
	using namespace maild::bench;
	Options options;
	if (!parse_options(argc, argv, options)) {
		usage(stderr);
		return 2;
	}
	const Protocol *protocol = find_protocol(options.protocol);
	if (!protocol) {
		std::fprintf(stderr, "maild-load: unknown protocol %s\n", options.protocol.c_str());
		return 2;
	}
	// A write to a connection the server reset is an error to count, not
	// a reason to die.
	signal(SIGPIPE, SIG_IGN);
	raise_file_limit(options.sessions);
	MessageSource messages(options.size, options.session.sender, options.session.recipient);
	Runner runner(options, *protocol, messages);
	return runner.run();
}
