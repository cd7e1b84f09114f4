using FlexPrefill.Inference.Generation;

namespace FlexPrefill.Inference.Tests.Generation;

public class StopSequenceMatcherTests
{
    [Fact]
    public void A_stop_string_split_across_tokens_is_held_back_and_removed()
    {
        var m = new StopSequenceMatcher(["<|im_end|>"]);
        Assert.Equal(("Hello", false), m.Push("Hello"));
        Assert.Equal((" wor", false), m.Push(" wor"));
        Assert.Equal(("ld", false), m.Push("ld<|im"));  // "<|im" might start the stop string
        Assert.Equal(("", true), m.Push("_end|> trailing"));
    }

    [Fact]
    public void Held_back_text_that_stops_matching_is_released()
    {
        var m = new StopSequenceMatcher(["\nUser:"]);
        Assert.Equal(("a", false), m.Push("a\nUs"));
        Assert.Equal(("\nUsual", false), m.Push("ual"));
        Assert.Equal(("", false), m.Push("\n"));
        Assert.Equal("\n", m.Flush());
    }

    [Fact]
    public void The_earliest_of_several_stop_strings_wins()
    {
        var m = new StopSequenceMatcher(["END", "STOP"]);
        Assert.Equal(("x ", true), m.Push("x STOP y END"));
    }

    [Fact]
    public void Without_stop_strings_text_passes_straight_through()
    {
        var m = new StopSequenceMatcher([]);
        Assert.Equal(("<|im", false), m.Push("<|im"));
        Assert.Equal("", m.Flush());
    }
}
