// The SMTP protocol module: see smtp_client.h.
#include "bench/load/smtp_client.h"

#include "bench/load/message.h"

#include <cstdint>
#include <string>
#include <vector>

namespace maild::bench {

namespace {

using Clock = std::chrono::steady_clock;

// Puts reply lines together into replies. RFC 5321 section 4.2: every line
// starts with the same three-digit code; "-" after it means more lines
// follow, " " or nothing means this is the last.
class ReplyAssembler {
public:
	enum class Status { More, Done, Malformed };

	Status feed(std::string_view line)
	{
		if (line.size() < 3 || !digit(line[0], '2', '5') || !digit(line[1], '0', '9') ||
		    !digit(line[2], '0', '9'))
			return Status::Malformed;
		int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		if (complete_) {
			lines_.clear();
			code_ = code;
			complete_ = false;
		} else if (code != code_) {
			return Status::Malformed;
		}
		bool last = line.size() == 3 || line[3] == ' ';
		if (!last && line[3] != '-')
			return Status::Malformed;
		lines_.emplace_back(line.size() > 4 ? line.substr(4) : std::string_view{});
		complete_ = last;
		return last ? Status::Done : Status::More;
	}

	int code() const { return code_; }
	const std::vector<std::string> &lines() const { return lines_; }
	// "550 text of the first line", for error reports.
	std::string summary() const
	{
		return std::to_string(code_) + (lines_.empty() ? "" : " " + lines_.front());
	}

private:
	static bool digit(char c, char low, char high) { return c >= low && c <= high; }

	int code_ = 0;
	bool complete_ = true;
	std::vector<std::string> lines_;
};

bool equals_ignoring_case(std::string_view a, std::string_view b)
{
	if (a.size() != b.size())
		return false;
	for (std::size_t i = 0; i < a.size(); i++) {
		auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
		if (lower(a[i]) != lower(b[i]))
			return false;
	}
	return true;
}

// Whether an EHLO reply offers an extension: its lines after the first
// each start with an extension keyword (RFC 5321 section 4.1.1.1).
bool offers(const std::vector<std::string> &ehlo_lines, std::string_view keyword)
{
	for (std::size_t i = 1; i < ehlo_lines.size(); i++) {
		std::string_view line = ehlo_lines[i];
		if (equals_ignoring_case(line.substr(0, line.find(' ')), keyword))
			return true;
	}
	return false;
}

class SmtpSession final : public Session {
public:
	explicit SmtpSession(const SessionContext &context) : context_(context) {}

	void on_line(std::string_view line) override
	{
		switch (reply_.feed(line)) {
		case ReplyAssembler::Status::More:
			return;
		case ReplyAssembler::Status::Malformed:
			fail("malformed reply line");
			return;
		case ReplyAssembler::Status::Done:
			on_reply();
			return;
		}
	}

	void on_close(std::string_view why) override
	{
		if (stage_ == Stage::Over)
			return;
		// The server may close at once after its 221 (or before we read it).
		if (stage_ == Stage::Quit) {
			stage_ = Stage::Over;
			context_.transport.finish(false, "");
			return;
		}
		if (in_transaction())
			end_transaction(false, why);
		fail(std::string(why));
	}

private:
	enum class Stage { Greeting, Ehlo, Helo, Idle, Mail, Rcpt, Data, Content, Rset, Quit, Over };

	void on_reply()
	{
		int code = reply_.code();
		// RFC 5321 section 3.8: 421 means the server is closing the
		// connection, whatever was asked.
		if (code == 421 && stage_ != Stage::Quit) {
			if (in_transaction())
				end_transaction(false, reply_.summary());
			fail(reply_.summary());
			return;
		}
		switch (stage_) {
		case Stage::Greeting:
			if (code != 220)
				return fail("greeting " + reply_.summary());
			send("EHLO " + context_.options.hello_name + "\r\n", Stage::Ehlo);
			return;
		case Stage::Ehlo:
			if (code == 250) {
				pipelining_ = context_.options.pipelining && offers(reply_.lines(), "PIPELINING");
				return introduced();
			}
			// RFC 5321 section 3.2: a server that does not know EHLO
			// gets HELO.
			if (code >= 500)
				return send("HELO " + context_.options.hello_name + "\r\n", Stage::Helo);
			return fail("EHLO " + reply_.summary());
		case Stage::Helo:
			if (code != 250)
				return fail("HELO " + reply_.summary());
			pipelining_ = false;
			return introduced();
		case Stage::Idle:
			return fail("unexpected reply " + reply_.summary());
		case Stage::Mail:
			return on_envelope_reply("MAIL", code == 250, "RCPT TO:<" + context_.options.recipient + ">\r\n",
			    Stage::Rcpt);
		case Stage::Rcpt:
			// 251 (will forward) accepts the recipient too.
			return on_envelope_reply("RCPT", code == 250 || code == 251, "DATA\r\n", Stage::Data);
		case Stage::Data:
			if (code != 354) {
				refuse("DATA " + reply_.summary());
				return after_transaction();
			}
			// Go ahead despite an earlier refusal (a server should have
			// refused DATA then, RFC 2920 section 3.1): an empty message
			// keeps the session in step.
			stage_ = Stage::Content;
			if (!refusal_.empty()) {
				context_.transport.send(".\r\n");
				return;
			}
			context_.transport.send(context_.messages.header(context_.index, sequence_));
			context_.transport.send_shared(context_.messages.body_and_end());
			return;
		case Stage::Content:
			if (code != 250)
				refuse("end of data " + reply_.summary());
			return after_transaction();
		case Stage::Rset:
			if (code != 250)
				return fail("RSET " + reply_.summary());
			return proceed();
		case Stage::Quit:
			context_.transport.finish(code != 221, code == 221 ? "" : "QUIT " + reply_.summary());
			stage_ = Stage::Over;
			return;
		case Stage::Over:
			return;
		}
	}

	void introduced()
	{
		context_.events.ready(pipelining_);
		proceed();
	}

	// What comes after MAIL or RCPT's reply: without pipelining, the next
	// command, or RSET at the first refusal; with it, the next reply (the
	// next command is already on its way).
	void on_envelope_reply(std::string_view command, bool accepted, const std::string &next_command,
	    Stage next_stage)
	{
		if (!accepted)
			refuse(std::string(command) + " " + reply_.summary());
		if (pipelining_) {
			stage_ = next_stage;
			return;
		}
		if (!accepted)
			return after_transaction();
		send(next_command, next_stage);
	}

	void proceed()
	{
		switch (context_.workload.next()) {
		case Next::Transaction:
			start_transaction();
			return;
		case Next::Hold:
			stage_ = Stage::Idle;
			return;
		case Next::Quit:
			send("QUIT\r\n", Stage::Quit);
			return;
		}
	}

	void start_transaction()
	{
		refusal_.clear();
		started_ = Clock::now();
		std::string mail = "MAIL FROM:<" + context_.options.sender + ">\r\n";
		if (pipelining_) {
			// RFC 2920 section 3.1: DATA ends a group; the message
			// waits for its 354.
			mail += "RCPT TO:<" + context_.options.recipient + ">\r\nDATA\r\n";
		}
		send(mail, Stage::Mail);
	}

	void refuse(std::string why)
	{
		if (refusal_.empty())
			refusal_ = std::move(why);
	}

	void after_transaction()
	{
		bool accepted = refusal_.empty();
		end_transaction(accepted, refusal_);
		if (accepted)
			return proceed();
		send("RSET\r\n", Stage::Rset);
	}

	void end_transaction(bool accepted, std::string_view why)
	{
		context_.events.transaction(accepted, Clock::now() - started_, why);
		sequence_++;
	}

	bool in_transaction() const
	{
		return stage_ == Stage::Mail || stage_ == Stage::Rcpt || stage_ == Stage::Data ||
		    stage_ == Stage::Content;
	}

	void send(const std::string &bytes, Stage next)
	{
		stage_ = next;
		context_.transport.send(bytes);
	}

	void fail(const std::string &why)
	{
		stage_ = Stage::Over;
		context_.transport.finish(true, why);
	}

	SessionContext context_;
	ReplyAssembler reply_;
	Stage stage_ = Stage::Greeting;
	bool pipelining_ = false;
	uint64_t sequence_ = 0;
	Clock::time_point started_;
	std::string refusal_; // the first refusal in this transaction, empty if none
};

} // namespace

std::unique_ptr<Session> make_smtp_session(const SessionContext &context)
{
	return std::make_unique<SmtpSession>(context);
}

} // namespace maild::bench
