// NetConn: a server connection on one end of a socketpair, driven by a real
// event loop, with a client in a thread on the other end: bytes both ways,
// all queued output delivered before a close, STARTTLS after a cleartext
// line, implicit TLS, a failed handshake, the idle timeout, and pausing.
#include "common/net_conn.h"

#include "temp_dir.h"

#include <criterion/criterion.h>
#include <event2/event.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <tls.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <thread>

using maild::NetCloseReason;
using maild::NetConn;
using maild::TlsPtr;
using maild::UniqueFd;

namespace {

struct Pair {
	UniqueFd server;
	UniqueFd client;
};

Pair socket_pair()
{
	int fds[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
	cr_assert_eq(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
	// Writing to a client that went away must fail, not kill the test.
	std::signal(SIGPIPE, SIG_IGN);
	return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// Runs the loop until done() or the deadline; false on the deadline.
bool run_until(event_base *base, const std::function<bool()> &done, std::chrono::milliseconds limit)
{
	auto deadline = std::chrono::steady_clock::now() + limit;
	while (!done()) {
		if (std::chrono::steady_clock::now() > deadline)
			return false;
		timeval tv{0, 20 * 1000};
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	return true;
}

// What the server side saw.
struct Seen {
	std::string data;
	std::optional<NetCloseReason> closed;
	std::string close_detail;
	int timeouts = 0;
	int tls_ready = 0;
};

NetConn::Callbacks recorder(Seen &seen)
{
	NetConn::Callbacks cb;
	cb.on_data = [&seen](std::string_view bytes) { seen.data.append(bytes); };
	cb.on_tls_ready = [&seen] { seen.tls_ready++; };
	cb.on_timeout = [&seen] { seen.timeouts++; };
	cb.on_closed = [&seen](NetCloseReason reason, std::string_view detail) {
		seen.closed = reason;
		seen.close_detail = detail;
	};
	return cb;
}

// Blocking helpers for the client end.
bool write_all(int fd, std::string_view bytes)
{
	while (!bytes.empty()) {
		ssize_t n = ::write(fd, bytes.data(), bytes.size());
		if (n <= 0)
			return false;
		bytes.remove_prefix(static_cast<std::size_t>(n));
	}
	return true;
}

// Reads one line byte by byte: nothing after it is consumed, so a TLS
// handshake can follow on the same socket.
std::string read_line(int fd)
{
	std::string line;
	char c;
	while (::read(fd, &c, 1) == 1) {
		line += c;
		if (c == '\n')
			break;
	}
	return line;
}

std::string read_to_eof(int fd)
{
	std::string all;
	char buf[65536];
	ssize_t n;
	while ((n = ::read(fd, buf, sizeof buf)) > 0)
		all.append(buf, static_cast<std::size_t>(n));
	return all;
}

struct TlsFiles {
	maild::test::TempDir dir;
	std::string cert = dir / "cert.pem";
	std::string key = dir / "key.pem";
	TlsFiles()
	{
		std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2"
				  " -subj /CN=localhost -keyout " +
		    key + " -out " + cert + " 2>/dev/null";
		cr_assert_eq(std::system(cmd.c_str()), 0, "openssl could not make a certificate");
	}
};

TlsPtr server_context(const TlsFiles &files)
{
	std::string error;
	TlsPtr server = maild::tls_server_context(files.cert, files.key, error);
	cr_assert(server != nullptr, "tls_server_context: %s", error.c_str());
	return server;
}

// A blocking libtls client on fd that trusts any certificate (the test's
// own, self-signed). The fd stays ours: libtls does not close it.
struct TlsClient {
	maild::TlsConfigPtr config{tls_config_new()};
	TlsPtr ctx{tls_client()};
	explicit TlsClient(int fd)
	{
		tls_config_insecure_noverifycert(config.get());
		tls_config_insecure_noverifyname(config.get());
		cr_assert_eq(tls_configure(ctx.get(), config.get()), 0);
		cr_assert_eq(tls_connect_socket(ctx.get(), fd, "localhost"), 0, "%s", tls_error(ctx.get()));
	}
	bool handshake() { return tls_handshake(ctx.get()) == 0; }
	bool write(std::string_view bytes)
	{
		while (!bytes.empty()) {
			ssize_t n = tls_write(ctx.get(), bytes.data(), bytes.size());
			if (n < 0)
				return false;
			bytes.remove_prefix(static_cast<std::size_t>(n));
		}
		return true;
	}
	std::string read_some()
	{
		char buf[4096];
		ssize_t n;
		// TLS 1.3 session tickets arrive first: nothing for the reader yet.
		do
			n = tls_read(ctx.get(), buf, sizeof buf);
		while (n == TLS_WANT_POLLIN || n == TLS_WANT_POLLOUT);
		return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
	}
};

struct Loop {
	event_base *base = event_base_new();
	~Loop() { event_base_free(base); }
};

} // namespace

Test(net_conn, plain_bytes_both_ways)
{
	Loop loop;
	Pair pair = socket_pair();
	Seen seen;
	NetConn *conn_ptr = nullptr;
	auto cb = recorder(seen);
	cb.on_data = [&](std::string_view bytes) {
		seen.data.append(bytes);
		if (seen.data.find('\n') != std::string::npos)
			conn_ptr->write("echo: " + seen.data);
	};
	NetConn conn(loop.base, std::move(pair.server), cb);
	conn_ptr = &conn;

	std::string reply;
	std::thread client([&] {
		write_all(pair.client.get(), "hello\r\n");
		reply = read_line(pair.client.get());
	});
	cr_assert(run_until(loop.base, [&] { return !reply.empty(); }, std::chrono::seconds(5)));
	client.join();
	cr_assert_eq(seen.data, "hello\r\n");
	cr_assert_eq(reply, "echo: hello\r\n");
	cr_assert(!seen.closed.has_value());
}

Test(net_conn, eof_is_reported)
{
	Loop loop;
	Pair pair = socket_pair();
	Seen seen;
	NetConn conn(loop.base, std::move(pair.server), recorder(seen));
	write_all(pair.client.get(), "bye");
	pair.client.reset();
	cr_assert(run_until(loop.base, [&] { return seen.closed.has_value(); }, std::chrono::seconds(5)));
	cr_assert_eq(seen.data, "bye");
	cr_assert(*seen.closed == NetCloseReason::Eof);
}

Test(net_conn, close_after_flush_delivers_everything)
{
	Loop loop;
	Pair pair = socket_pair();
	Seen seen;
	NetConn conn(loop.base, std::move(pair.server), recorder(seen));
	// Far more than a socket buffer: the writes are partial and resumed.
	std::string big;
	for (int i = 0; big.size() < 3 * 1024 * 1024; i++)
		big += "line " + std::to_string(i) + "\r\n";
	conn.write(big.substr(0, 1000));
	conn.write(big.substr(1000));
	conn.close_after_flush();
	conn.write("ignored after close");

	std::string received;
	std::thread client([&] { received = read_to_eof(pair.client.get()); });
	cr_assert(run_until(loop.base, [&] { return seen.closed.has_value(); }, std::chrono::seconds(10)));
	client.join();
	cr_assert(*seen.closed == NetCloseReason::Closed);
	cr_assert_eq(received.size(), big.size());
	cr_assert(received == big);
}

Test(net_conn, idle_timeout_fires_and_input_resets_it)
{
	Loop loop;
	Pair pair = socket_pair();
	Seen seen;
	NetConn conn(loop.base, std::move(pair.server), recorder(seen));
	conn.set_timeout(1);
	auto start = std::chrono::steady_clock::now();
	// Input after 0.6 s pushes the timeout to 1.6 s.
	std::thread client([&] {
		std::this_thread::sleep_for(std::chrono::milliseconds(600));
		write_all(pair.client.get(), "x");
	});
	cr_assert(run_until(loop.base, [&] { return seen.timeouts > 0; }, std::chrono::seconds(5)));
	client.join();
	auto elapsed = std::chrono::steady_clock::now() - start;
	cr_assert_eq(seen.timeouts, 1);
	cr_assert(elapsed >= std::chrono::milliseconds(1500), "timeout fired after %lld ms",
	    static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()));
	cr_assert(!seen.closed.has_value(), "a timeout is the owner's to act on");
}

Test(net_conn, close_times_out_when_the_client_reads_nothing)
{
	Loop loop;
	Pair pair = socket_pair();
	Seen seen;
	NetConn conn(loop.base, std::move(pair.server), recorder(seen));
	conn.set_timeout(1);
	conn.write(std::string(4 * 1024 * 1024, 'x')); // more than the socket holds
	conn.close_after_flush();
	cr_assert(run_until(loop.base, [&] { return seen.closed.has_value(); }, std::chrono::seconds(5)));
	cr_assert(*seen.closed == NetCloseReason::Timeout);
}

Test(net_conn, pause_stops_reading_until_resume)
{
	Loop loop;
	Pair pair = socket_pair();
	Seen seen;
	NetConn conn(loop.base, std::move(pair.server), recorder(seen));
	conn.pause_reading();
	write_all(pair.client.get(), "held back");
	cr_assert(!run_until(loop.base, [&] { return !seen.data.empty(); }, std::chrono::milliseconds(200)));
	conn.resume_reading();
	cr_assert(run_until(loop.base, [&] { return seen.data == "held back"; }, std::chrono::seconds(5)));
}

Test(net_conn, starttls_after_a_cleartext_line)
{
	TlsFiles files;
	TlsPtr server = server_context(files);
	Loop loop;
	Pair pair = socket_pair();
	Seen seen;
	NetConn *conn_ptr = nullptr;
	auto cb = recorder(seen);
	cb.on_data = [&](std::string_view bytes) {
		seen.data.append(bytes);
		if (seen.data == "STARTTLS\r\n") {
			conn_ptr->write("220 go ahead\r\n");
			conn_ptr->start_tls(server.get());
		} else if (seen.data == "STARTTLS\r\nsecret\r\n") {
			conn_ptr->write("got it\r\n");
		}
	};
	NetConn conn(loop.base, std::move(pair.server), cb);
	conn_ptr = &conn;

	std::string go, answer;
	bool handshook = false;
	std::thread client([&] {
		write_all(pair.client.get(), "STARTTLS\r\n");
		go = read_line(pair.client.get());
		TlsClient tls(pair.client.get());
		handshook = tls.handshake();
		if (handshook && tls.write("secret\r\n"))
			answer = tls.read_some();
	});
	cr_assert(run_until(loop.base, [&] { return !answer.empty(); }, std::chrono::seconds(10)),
	    "no answer over TLS; server saw [%s], tls_ready %d, close detail [%s]", seen.data.c_str(), seen.tls_ready,
	    seen.close_detail.c_str());
	client.join();
	cr_assert_eq(go, "220 go ahead\r\n");
	cr_assert(handshook);
	cr_assert_eq(seen.tls_ready, 1);
	cr_assert_eq(answer, "got it\r\n");
	cr_assert(conn.tls_active());
	cr_assert(conn.tls_version().starts_with("TLSv1."), "version %s", conn.tls_version().c_str());
	cr_assert(!conn.tls_cipher().empty());
}

Test(net_conn, implicit_tls_then_close_after_flush)
{
	TlsFiles files;
	TlsPtr server = server_context(files);
	Loop loop;
	Pair pair = socket_pair();
	Seen seen;
	NetConn *conn_ptr = nullptr;
	auto cb = recorder(seen);
	cb.on_tls_ready = [&] {
		seen.tls_ready++;
		conn_ptr->write("220 hello over TLS\r\n");
	};
	cb.on_data = [&](std::string_view bytes) {
		seen.data.append(bytes);
		if (seen.data == "QUIT\r\n") {
			conn_ptr->write("221 bye\r\n");
			conn_ptr->close_after_flush();
		}
	};
	NetConn conn(loop.base, std::move(pair.server), cb);
	conn_ptr = &conn;
	conn.start_tls(server.get());

	std::string received;
	std::thread client([&] {
		TlsClient tls(pair.client.get());
		if (!tls.handshake())
			return;
		received = tls.read_some();
		tls.write("QUIT\r\n");
		for (std::string more; !(more = tls.read_some()).empty();)
			received += more;
	});
	cr_assert(run_until(loop.base, [&] { return seen.closed.has_value(); }, std::chrono::seconds(10)));
	client.join();
	cr_assert(*seen.closed == NetCloseReason::Closed);
	cr_assert_eq(received, "220 hello over TLS\r\n221 bye\r\n", "received [%s]", received.c_str());
}

Test(net_conn, failed_handshake_is_reported)
{
	TlsFiles files;
	TlsPtr server = server_context(files);
	Loop loop;
	Pair pair = socket_pair();
	Seen seen;
	NetConn conn(loop.base, std::move(pair.server), recorder(seen));
	conn.start_tls(server.get());
	write_all(pair.client.get(), "EHLO this is not a TLS client hello\r\n");
	cr_assert(run_until(loop.base, [&] { return seen.closed.has_value(); }, std::chrono::seconds(5)));
	cr_assert(*seen.closed == NetCloseReason::TlsFailed);
	cr_assert(!seen.close_detail.empty());
	cr_assert(seen.data.empty(), "nothing of a failed handshake reaches the owner");
}

Test(net_conn, owner_may_destroy_the_connection_in_a_callback)
{
	Loop loop;
	Pair pair = socket_pair();
	std::optional<NetConn> conn;
	std::string data;
	NetConn::Callbacks cb;
	cb.on_data = [&](std::string_view bytes) {
		data.append(bytes);
		conn.reset();
	};
	conn.emplace(loop.base, std::move(pair.server), cb);
	write_all(pair.client.get(), std::string(100 * 1024, 'y'));
	cr_assert(run_until(loop.base, [&] { return !conn.has_value(); }, std::chrono::seconds(5)));
	cr_assert_eq(data.size(), NetConn::kReadChunk);
	// The server end is closed: the client sees EOF.
	pair.client.reset();
}
